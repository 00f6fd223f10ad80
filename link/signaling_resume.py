"""The client's half of resuming (``signaling.resume``): the secret, and presenting it.

Every ``Welcome`` carries a resume secret for its connection. Presented on the next
connection's upgrade (``X-Tandem-Resume``), it lets signaling replace this peer's old
connection at once instead of first probing it for seconds. The secret is held here,
in memory only, apart from the connect loop so that there is one place it is kept and
one place it leaves: the upgrade headers. It is never logged.
"""

from __future__ import annotations

from shared.messages import RESUME_HEADER, Welcome

__all__ = ["ResumeSecret"]


class ResumeSecret:
    """The resume secret of the last ``Welcome`` that carried one."""

    __slots__ = ("_secret",)

    def __init__(self) -> None:
        self._secret: str | None = None

    def learn(self, welcome: Welcome) -> None:
        """Keep ``welcome``'s secret (this connection's) for the next connection."""
        if welcome.resume is not None:
            self._secret = welcome.resume

    def present(self, headers: dict[str, str]) -> None:
        """Add the secret, if one is known, to an upgrade request's ``headers``."""
        if self._secret is not None:
            headers[RESUME_HEADER] = self._secret
