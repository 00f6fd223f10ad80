"""What opening a path to a worker yields, whichever path it is."""

from __future__ import annotations

from dataclasses import dataclass

from link import Link

__all__ = ["Connected"]


@dataclass(frozen=True)
class Connected:
    """An open link and who is at the other end."""

    link: Link
    worker_id: str
    model: str
