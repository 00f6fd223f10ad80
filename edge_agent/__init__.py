"""The edge agent: local OpenAI/Ollama-compatible HTTP API, a small local model, and
escalation of hard prompts over WebRTC to cloud workers."""
