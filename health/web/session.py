"""Dashboard sessions: a keystore of the node's keystore directory, unlocked for a while.

``POST /health/session {keystore, passphrase}`` opens ``<directory>/<keystore>.keystore``
(``health.client.Keystore.open``: Argon2id, then SecretBox) and answers a token; the
routes that act for a user (``/health/me``, readings, statistics, actions) take it as
``Authorization: Bearer <token>`` or as the ``bighealth_session`` cookie.

Contracts:

- a token is 32 bytes of the operating system's generator (``os.urandom``), base64url
  without padding (43 characters); the store keeps only its SHA-256, in memory: a restart
  ends every session;
- a session expires ``ttl_s`` after it opened (on the store's monotonic clock) and is
  forgotten when found expired; at most ``max_sessions`` are open (one more is refused
  ``too_many_sessions`` until one ends or expires);
- a client address with ``max_failures`` failed unlocks within ``failure_window_s`` is
  refused (``rate_limited``, with the seconds to wait) before anything is read; at most
  ``max_tracked_clients`` addresses are tracked (while the table is full of recent
  failures, new addresses share one bucket); a missing keystore and a wrong passphrase fail alike
  (``wrong_passphrase``), so names cannot be probed faster than passphrases;
- at most ``max_concurrent_unlocks`` key derivations run at once (each costs tens of
  megabytes and a fraction of a second), ``max_waiting_unlocks`` wait; more are ``busy``;
- sessions of one keystore share one open ``Keystore`` (its file is rewritten on changes:
  two copies would overwrite each other) and one lock, held by whatever uses it;
- the passphrase is never logged nor kept; logs name the keystore and the client only.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import trio

from health.client import Keystore, KeystoreError
from health.web.errors import WebError

logger = logging.getLogger("health.web")

TOKEN_BYTES: Final = 32
KEYSTORE_SUFFIX: Final = ".keystore"
COOKIE_NAME: Final = "bighealth_session"
OVERFLOW_BUCKET: Final = "*"
"""The failure bucket shared by new addresses while the table is full."""


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """Bounds of the session store (see the module docstring)."""

    ttl_s: float = 3_600.0
    max_sessions: int = 64
    max_failures: int = 5
    failure_window_s: float = 300.0
    max_tracked_clients: int = 4_096
    max_concurrent_unlocks: int = 2
    max_waiting_unlocks: int = 8

    def __post_init__(self) -> None:
        if self.ttl_s <= 0 or self.failure_window_s <= 0:
            raise ValueError("SessionLimits: ttl_s and failure_window_s must be > 0")
        for name in (
            "max_sessions",
            "max_failures",
            "max_tracked_clients",
            "max_concurrent_unlocks",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"SessionLimits.{name} must be >= 1")
        if self.max_waiting_unlocks < 0:
            raise ValueError("SessionLimits.max_waiting_unlocks must be >= 0")


@dataclass(eq=False, slots=True)
class OpenKeystore:
    """One unlocked keystore, shared by its sessions, with the lock its users hold."""

    name: str
    keystore: Keystore
    lock: trio.Lock = field(default_factory=trio.Lock)
    sessions: int = 0
    client: object | None = None
    """What the API layer builds over the keystore (a ``HealthClient``), kept with it."""
    readings: dict[bytes, Any] = field(default_factory=dict)
    """Readings decrypted with this keystore, by record id (bounded by the API layer)."""


@dataclass(eq=False, slots=True)
class Session:
    """An open session: its keystore and when it expires (monotonic seconds)."""

    opened: OpenKeystore
    expires_at: float

    @property
    def keystore(self) -> Keystore:
        """The unlocked keystore."""
        return self.opened.keystore


def new_token(rng_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh session token (base64url, no padding)."""
    return base64.urlsafe_b64encode(rng_bytes(TOKEN_BYTES)).rstrip(b"=").decode("ascii")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "replace")).digest()


class SessionStore:
    """Sessions over the keystores of ``directory`` (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        limits: SessionLimits | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        rng_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.directory = directory
        self.limits = limits if limits is not None else SessionLimits()
        self._monotonic = monotonic
        self._rng_bytes = rng_bytes
        self._sessions: dict[bytes, Session] = {}
        self._open: dict[str, OpenKeystore] = {}
        self._failures: dict[str, deque[float]] = {}
        self._limiter = trio.CapacityLimiter(self.limits.max_concurrent_unlocks)

    @property
    def open_sessions(self) -> int:
        """Sessions open now (expired ones pruned)."""
        self._prune()
        return len(self._sessions)

    def expires_in_s(self, session: Session) -> int:
        """Whole seconds until ``session`` expires (0 once it has)."""
        return max(0, int(session.expires_at - self._monotonic()))

    async def unlock(self, name: str, passphrase: str, client: str) -> tuple[str, Session]:
        """Open the keystore ``name`` for ``client`` (an address); the token and session.
        ``WebError``: ``rate_limited``, ``too_many_sessions``, ``busy``,
        ``wrong_passphrase`` (or no such keystore), ``forbidden`` (a damaged keystore)."""
        self._check_failures(client)
        self._prune()
        if len(self._sessions) >= self.limits.max_sessions:
            raise WebError(
                "too_many_sessions",
                f"{self.limits.max_sessions} sessions are open: end one first",
                retry_after_s=60,
            )
        keystore = await self._open_keystore(name, passphrase, client)
        opened = self._open.get(name)
        if opened is None or opened.keystore.path != keystore.path:
            opened = OpenKeystore(name, keystore)
            self._open[name] = opened
        token = new_token(self._rng_bytes)
        session = Session(opened, self._monotonic() + self.limits.ttl_s)
        opened.sessions += 1
        self._sessions[_digest(token)] = session
        logger.info("session opened", extra={"fields": {"keystore": name, "client": client}})
        return token, session

    def get(self, token: str | None) -> Session:
        """The open session of ``token``; ``WebError("unauthorized")`` for none, an
        unknown one or an expired one (forgotten then)."""
        if not token:
            raise WebError("unauthorized", "this needs a session: POST /health/session first")
        key = _digest(token)
        session = self._sessions.get(key)
        if session is None:
            raise WebError("unauthorized", "no such session (it ended, or the node restarted)")
        if self._monotonic() >= session.expires_at:
            self._forget(key)
            raise WebError("unauthorized", "the session expired: unlock the keystore again")
        return session

    def end(self, token: str | None) -> bool:
        """End the session of ``token``; False if there was none."""
        if not token:
            return False
        key = _digest(token)
        if key not in self._sessions:
            return False
        self._forget(key)
        return True

    async def _open_keystore(self, name: str, passphrase: str, client: str) -> Keystore:
        path = self.directory / f"{name}{KEYSTORE_SUFFIX}"
        if path.parent != self.directory or "/" in name or name.startswith("."):
            raise WebError("malformed", "a keystore is named by a plain file name")
        waiting = self._limiter.statistics().tasks_waiting
        if waiting >= self.limits.max_waiting_unlocks:
            raise WebError("busy", "too many unlocks under way: retry", retry_after_s=1)
        try:
            return await trio.to_thread.run_sync(
                Keystore.open, path, passphrase, limiter=self._limiter
            )
        except KeystoreError as exc:
            if exc.reason in ("wrong_passphrase", "missing"):
                self._fail(client, name)
                raise WebError(
                    "wrong_passphrase", f"keystore {name!r} does not open with this passphrase"
                ) from None
            logger.warning(
                "a keystore cannot be read",
                extra={"fields": {"keystore": name, "reason": exc.reason}},
            )
            raise WebError(
                "forbidden", f"keystore {name!r} cannot be read ({exc.reason})"
            ) from None

    def _bucket(self, client: str) -> str:
        """The failure bucket of ``client``: its own unless the table is full."""
        if client in self._failures or len(self._failures) < self.limits.max_tracked_clients:
            return client
        self._prune_failures(self._monotonic())
        if len(self._failures) < self.limits.max_tracked_clients:
            return client
        return OVERFLOW_BUCKET

    def _check_failures(self, client: str) -> None:
        now = self._monotonic()
        client = self._bucket(client)
        failures = self._failures.get(client)
        if failures is None:
            return
        while failures and now - failures[0] >= self.limits.failure_window_s:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return
        if len(failures) >= self.limits.max_failures:
            wait = self.limits.failure_window_s - (now - failures[0])
            raise WebError(
                "rate_limited",
                f"{len(failures)} failed unlocks from this address: wait {wait:.0f} s",
                retry_after_s=max(1, int(wait + 0.999)),
            )

    def _fail(self, client: str, name: str) -> None:
        now = self._monotonic()
        logger.warning("failed unlock", extra={"fields": {"keystore": name, "client": client}})
        bucket = self._bucket(client)
        failures = self._failures.setdefault(bucket, deque(maxlen=self.limits.max_failures))
        failures.append(now)

    def _prune_failures(self, now: float) -> None:
        window = self.limits.failure_window_s
        stale = [c for c, f in self._failures.items() if not f or now - f[-1] >= window]
        for client in stale:
            del self._failures[client]

    def _prune(self) -> None:
        now = self._monotonic()
        for key in [k for k, s in self._sessions.items() if now >= s.expires_at]:
            self._forget(key)

    def _forget(self, key: bytes) -> None:
        session = self._sessions.pop(key)
        opened = session.opened
        opened.sessions -= 1
        if opened.sessions <= 0 and self._open.get(opened.name) is opened:
            del self._open[opened.name]
