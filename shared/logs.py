"""Log output of the three processes: journald-friendly text by default, or JSON lines.

Why here: the edge, the worker and signaling must write the same format (operators feed
all three into one pipeline), and those three never import each other. This module is
stdlib only (``logging``, ``json``), like the ``log_format`` helper beside the settings.

* ``text`` (default). Under systemd (``JOURNAL_STREAM`` is set) each line starts with a
  syslog priority prefix (``<6>`` info, ``<4>`` warning, ...), which journald turns into
  the entry's priority (``journalctl -p warning`` works), and carries no timestamp:
  journald stamps every line itself. On a terminal: ``time LEVEL logger: message``.
* ``json``. One object per line with the stable keys ``ts`` (RFC 3339, UTC), ``level``,
  ``logger``, ``msg``, then the record's structured fields (``log_event``), then ``exc``
  when there is a traceback. Keys never change meaning; new ones may be added.

Structured events (one per HTTP request on the edge, one per stream on a worker) go
through ``log_event``: the fields are also rendered as ``key=value`` in the text message,
so the text format loses nothing.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

__all__ = [
    "FIELDS_ATTR",
    "JsonFormatter",
    "LogFormat",
    "TextFormatter",
    "configure_logging",
    "log_event",
]

LogFormat = Literal["text", "json"]

FIELDS_ATTR = "tandem_fields"
"""The ``LogRecord`` attribute ``log_event`` puts its fields under."""

_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
_RESERVED = frozenset({"ts", "level", "logger", "msg", "exc"})


def _priority(levelno: int) -> int:
    for level, priority in _SYSLOG_PRIORITY.items():  # highest level first
        if levelno >= level:
            return priority
    return 7


def _fields(record: logging.LogRecord) -> Mapping[str, Any]:
    fields = getattr(record, FIELDS_ATTR, None)
    return fields if isinstance(fields, Mapping) else {}


def _text_value(value: Any) -> str:
    text = "-" if value is None else str(value)
    return json.dumps(text) if (not text or any(c in text for c in ' "=\n')) else text


def log_event(logger: logging.Logger, level: int, event: str, /, **fields: Any) -> None:
    """Log ``event`` with structured ``fields``: ``event k=v ...`` as text, the fields as
    top-level keys in JSON. Values must be str, int, float, bool or None (no secrets, no
    user text: callers pass only what an operator may read)."""
    if not logger.isEnabledFor(level):
        return
    text = " ".join(f"{k}={_text_value(v)}" for k, v in fields.items())
    logger.log(level, "%s %s", event, text, extra={FIELDS_ATTR: fields})


class TextFormatter(logging.Formatter):
    """Plain lines; syslog priority prefix and no timestamp under journald."""

    def __init__(self, *, journald: bool) -> None:
        fmt = (
            "%(name)s: %(message)s"
            if journald
            else "%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        super().__init__(fmt)
        self._journald = journald

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if not self._journald:
            return text
        # journald reads the prefix of each line; a traceback's lines keep the priority.
        prefix = f"<{_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in text.splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module docstring for the keys)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _fields(record).items():
            if key not in _RESERVED:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["exc"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(
    level: str,
    fmt: LogFormat,
    environ: Mapping[str, str],
    *,
    stream: TextIO | None = None,
) -> None:
    """Send every log record to ``stream`` (stderr) in ``fmt``; replaces earlier handlers,
    so calling it twice (tests, a CLI that reconfigures) never doubles lines."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter(journald="JOURNAL_STREAM" in environ))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
