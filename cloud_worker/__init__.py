"""The cloud worker: serves escalated requests from edge peers with the full model."""
