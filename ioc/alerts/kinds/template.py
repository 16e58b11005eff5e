"""Summary templates: ``{field}`` placeholders filled from an alert's group and figures.

A summary is what a phone shows, so rendering never fails: a placeholder with no value stays
visible as ``{asset_id?}`` (the rule author sees what is missing) and a format spec that does
not fit the value falls back to the plain value. Syntax errors are caught when the rule file
is loaded, not when the alert fires.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import datetime

_FORMATTER = string.Formatter()


class TemplateError(ValueError):
    """The template text itself is malformed (unbalanced braces, nested fields)."""


class Template:
    """A parsed summary template; :meth:`render` is cheap and total."""

    __slots__ = ("_parts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        parts: list[tuple[str, str | None, str, str | None]] = []
        try:
            parsed = list(_FORMATTER.parse(text))
        except ValueError as exc:
            raise TemplateError(f"bad summary template {text!r}: {exc}") from None
        for literal, name, spec, conversion in parsed:
            if name is not None and not name.strip():
                raise TemplateError(f"bad summary template {text!r}: empty placeholder {{}}")
            if spec and ("{" in spec or "}" in spec):
                raise TemplateError(f"bad summary template {text!r}: nested placeholders")
            parts.append((literal, name, spec or "", conversion))
        self._parts = tuple(parts)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in self._parts if name is not None)

    def render(self, values: Mapping[str, object]) -> str:
        out: list[str] = []
        for literal, name, spec, conversion in self._parts:
            out.append(literal)
            if name is None:
                continue
            value = values.get(name)
            if value is None:
                out.append("{" + name + "?}")
            elif conversion == "r":
                out.append(repr(value))
            else:
                out.append(_format(value, spec))
        return "".join(out)


def _format(value: object, spec: str) -> str:
    if spec:
        try:
            return format(value, spec)
        except (ValueError, TypeError):
            pass
    return plain(value)


def plain(value: object) -> str:
    """How a value reads in a summary without a format spec: ``0.8734``, ``14``, ISO times."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{round(value, 4):g}" if abs(value) < 1e6 else f"{value:.0f}"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
