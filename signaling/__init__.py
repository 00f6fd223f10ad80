"""The signaling server: authenticates peers, matches edges to workers, relays SDP.

Edges and workers never learn each other's addresses except through this process, so it
is the one place that decides who talks to whom (``matchmaking``) and the one place that
must refuse unauthenticated peers (``handlers``). ``app.create_app`` wires it together;
only ``__main__`` runs it.
"""
