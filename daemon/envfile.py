"""A commented ``EnvironmentFile``: every ``TANDEM_*`` setting of a process, with its
help text and default, commented out, so that an operator uncomments what they change.

Written from the settings model itself, so it lists exactly what the program accepts
(an unknown ``TANDEM_*`` would be refused at start).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

__all__ = ["render_env_file"]

ENV_PREFIX = "TANDEM_"


def _default(value: Any) -> str:
    if value is None or value is PydanticUndefined:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, str | int | float | Path):
        return str(value)
    if isinstance(value, SecretStr):
        return ""
    return json.dumps(value, default=str)  # lists and tuples: pydantic-settings reads JSON


def render_env_file(
    settings: type[BaseModel],
    *,
    title: str,
    set_values: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
) -> str:
    """The file's text. ``set_values`` are written uncommented (a generated secret);
    ``notes`` add a line to a field's comment (e.g. "the unit sets this")."""
    values = dict(set_values or {})
    extra = dict(notes or {})
    lines = [
        f"# {title}",
        "# Read by systemd (root) at every start; mode 0600: it may hold secrets.",
        "# Uncomment and edit a line to change a setting; flags in the unit override",
        "# these, and these override the TOML config. Values are literal (no quotes needed).",
        "",
    ]
    for name, field in settings.model_fields.items():
        env = f"{ENV_PREFIX}{name.upper()}"
        help_text = " ".join((field.description or "").split())
        if name in extra:
            help_text = f"{help_text} {extra[name]}".strip()
        for row in textwrap.wrap(help_text, width=86, break_on_hyphens=False) or [""]:
            lines.append(f"# {row}".rstrip())
        if env in values:
            lines.append(f"{env}={values.pop(env)}")
        else:
            lines.append(f"#{env}={_default(field.default)}")
        lines.append("")
    if values:
        raise ValueError(f"not settings of {settings.__name__}: {', '.join(values)}")
    return "\n".join(lines)
