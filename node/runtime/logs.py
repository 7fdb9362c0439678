"""Structured logs: one JSON object per line (or an aligned text line) on stderr.

Every record has ``ts`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``node`` (the
moniker) and ``msg``; fields given as ``extra={"fields": {...}}`` are added as keys, so a
log shipper can index ``height``, ``peer`` or ``block_id`` without parsing text::

    {"ts": "2026-01-05T10:00:01.250Z", "level": "info", "logger": "node.runtime",
     "node": "validator-0", "msg": "committed", "height": 12, "txs": 3, ...}

libp2p's own loggers are capped at WARNING unless the level is ``debug``: they are chatty
about every connection that ends. (libp2p detaches its loggers from the root when it is
imported; ``adopt_library_loggers`` brings them back under this format.)
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Final, TextIO

NOISY_LOGGERS: Final = ("libp2p", "multiaddr", "async_service", "anyio")
QUIET_LOGGERS: Final = ("libp2p.transport",)
"""Loggers kept to CRITICAL unless debugging: libp2p logs every failed dial to a peer that is
down as an error (the network counts them, and the runtime logs peers coming and going)."""
_RESERVED: Final = frozenset({"ts", "level", "logger", "node", "msg"})


def fields(**values: Any) -> dict[str, Any]:
    """``extra=`` for a structured log call: ``log.info("committed", extra=fields(h=1))``."""
    return {"fields": values}


def _timestamp(created_s: float) -> str:
    seconds = int(created_s)
    millis = int((created_s - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "node": self.node,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            for key, value in extra.items():
                document[f"field_{key}" if key in _RESERVED else key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``ts level node logger: msg key=value ...`` for people at a terminal."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        extra = getattr(record, "fields", None)
        pairs = ""
        if isinstance(extra, dict):
            pairs = "".join(f" {key}={value}" for key, value in extra.items())
        line = (
            f"{_timestamp(record.created)} {record.levelname:<7} {self.node} "
            f"{record.name}: {record.getMessage()}{pairs}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str, form: str, node: str, stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (stderr) as ``form`` (``json`` or ``text``)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(node) if form == "json" else TextFormatter(node))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    noisy_level = logging.DEBUG if level == "debug" else logging.WARNING
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(noisy_level)


def adopt_library_loggers() -> None:
    """Route libp2p's loggers through the root handler again (importing libp2p detaches
    them), at the levels ``configure_logging`` chose. Call after importing libp2p."""
    debugging = logging.getLogger().level <= logging.DEBUG
    for name, existing in logging.root.manager.loggerDict.items():
        # Some libp2p modules pin their own level (INFO): let them inherit ours instead.
        if name.startswith("libp2p.") and isinstance(existing, logging.Logger):
            existing.setLevel(logging.NOTSET)
    for name in NOISY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
        library.setLevel(logging.DEBUG if debugging else logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if debugging else logging.CRITICAL)
