"""A small TOML writer for the files a node home holds (reading is ``tomllib``'s job).

It writes what ``config.toml`` needs and nothing more: tables of bare keys whose values are
strings, integers, booleans or arrays of strings, each with an optional comment above it,
so the file an operator opens explains itself. Anything else raises ``TypeError``: a writer
that guessed would produce files ``tomllib`` reads back differently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

TomlValue = str | int | bool | tuple[str, ...]

BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_ESCAPES: Final = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f"}
_ESCAPES_CR: Final = {"\r": "\\r"}


@dataclass(frozen=True, slots=True)
class Entry:
    """``key = value``, with ``comment`` (may span lines) written above it."""

    key: str
    value: TomlValue
    comment: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    """``[name]`` and its entries; ``name`` None is the root table (written first)."""

    name: str | None
    entries: tuple[Entry, ...]
    comment: str = ""


def dumps(tables: Sequence[Table], header: str = "") -> str:
    """The TOML text of ``tables`` (the root table, if any, must come first)."""
    lines = _comment_lines(header)
    for index, table in enumerate(tables):
        if table.name is None and index != 0:
            raise ValueError("the root table must come first")
        if lines:
            lines.append("")
        lines += _comment_lines(table.comment)
        if table.name is not None:
            lines.append(f"[{_key(table.name)}]")
        for entry in table.entries:
            lines += _comment_lines(entry.comment)
            lines.append(f"{_key(entry.key)} = {format_value(entry.value)}")
    return "\n".join(lines) + "\n"


def format_value(value: TomlValue) -> str:
    """One value as TOML (``TypeError`` for a type this writer does not support)."""
    if isinstance(value, bool):  # before int: a bool is an int in Python
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, tuple) and all(isinstance(item, str) for item in value):
        if not value:
            return "[]"
        return "[\n" + "".join(f"  {quote(item)},\n" for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def quote(text: str) -> str:
    """``text`` as a TOML basic string."""
    out = []
    for char in text:
        escaped = _ESCAPES.get(char) or _ESCAPES_CR.get(char)
        if escaped is not None:
            out.append(escaped)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    if BARE_KEY.fullmatch(key) is None:
        raise ValueError(f"not a bare TOML key: {key!r}")
    return key


def _comment_lines(comment: str) -> list[str]:
    return [f"# {line}".rstrip() for line in comment.splitlines()] if comment else []
