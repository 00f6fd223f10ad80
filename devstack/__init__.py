"""Run the whole Tandem stack on loopback: signaling, one worker, one edge.

This is what ``make run`` starts and what the end-to-end tests start: the three real
console programs as child processes, with a fresh shared secret and tokens minted from
it. It imports none of the processes; it only launches them.
"""

from devstack.stack import Stack, StackConfig

__all__ = ["Stack", "StackConfig"]
