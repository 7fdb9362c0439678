"""The session store of the health API on its own: tokens, expiry, the bound on sessions, the
per-client rate limit and its bounded table, one open keystore per name, bounded unlocks."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from health.client import KDF_MIN, Keystore
from health.contracts.common import HealthRole
from health.web.errors import WebError
from health.web.session import TOKEN_BYTES, SessionLimits, SessionStore

PASS = "pass phrase"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    for name in ("alice", "bob"):
        Keystore.create(
            tmp_path / f"{name}.keystore", PASS, name=name, role=HealthRole.PATIENT, kdf=KDF_MIN
        )
    return tmp_path


def store(directory: Path, clock: Clock, **limits: float) -> SessionStore:
    return SessionStore(directory, SessionLimits(**limits), monotonic=clock)  # type: ignore[arg-type]


async def test_tokens_are_random_kept_hashed_and_end(directory: Path) -> None:
    clock = Clock()
    sessions = store(directory, clock)
    token, session = await sessions.unlock("alice", PASS, "10.0.0.1")
    other, _ = await sessions.unlock("alice", PASS, "10.0.0.1")
    assert token != other and len(token) == 43  # 32 bytes, base64url without padding
    assert len(token.encode()) > TOKEN_BYTES
    assert token not in repr(vars(sessions))  # only digests are kept
    assert sessions.get(token) is session and sessions.get(other).opened is session.opened
    assert sessions.end(token) and not sessions.end(token)
    with pytest.raises(WebError) as ended:
        sessions.get(token)
    assert ended.value.reason == "unauthorized"
    assert sessions.get(other).keystore.name == "alice"  # the keystore stays open for it


async def test_sessions_expire_and_are_bounded(directory: Path) -> None:
    clock = Clock()
    sessions = store(directory, clock, ttl_s=60, max_sessions=2)
    first, _ = await sessions.unlock("alice", PASS, "a")
    await sessions.unlock("bob", PASS, "a")
    with pytest.raises(WebError) as full:
        await sessions.unlock("alice", PASS, "a")
    assert full.value.reason == "too_many_sessions" and full.value.status == 429
    clock.now += 60
    with pytest.raises(WebError, match="expired"):
        sessions.get(first)
    assert sessions.open_sessions == 0  # the other expired too: room again
    await sessions.unlock("alice", PASS, "a")


async def test_failures_are_counted_per_client_in_a_window(directory: Path) -> None:
    clock = Clock()
    sessions = store(directory, clock, max_failures=2, failure_window_s=30)
    for _ in range(2):
        with pytest.raises(WebError) as wrong:
            await sessions.unlock("alice", "nope", "10.0.0.1")
        assert wrong.value.reason == "wrong_passphrase"
    with pytest.raises(WebError) as limited:
        await sessions.unlock("alice", PASS, "10.0.0.1")
    assert limited.value.reason == "rate_limited" and limited.value.retry_after_s == 30
    await sessions.unlock("alice", PASS, "10.0.0.2")  # another client is not limited
    clock.now += 30
    await sessions.unlock("alice", PASS, "10.0.0.1")


async def test_a_full_client_table_puts_new_clients_in_one_bucket(directory: Path) -> None:
    clock = Clock()
    sessions = store(directory, clock, max_failures=2, max_tracked_clients=2)
    for client in ("a", "b", "c", "d"):
        with pytest.raises(WebError):
            await sessions.unlock("alice", "nope", client)
    # c and d shared the overflow bucket: two failures there limit every new client
    with pytest.raises(WebError) as limited:
        await sessions.unlock("alice", PASS, "e")
    assert limited.value.reason == "rate_limited"
    await sessions.unlock("alice", PASS, "a")  # a tracked client with one failure


async def test_unlocks_waiting_beyond_the_bound_are_busy(directory: Path) -> None:
    clock = Clock()
    sessions = store(directory, clock, max_concurrent_unlocks=1, max_waiting_unlocks=1)
    results: list[str] = []

    async def unlock() -> None:
        try:
            await sessions.unlock("alice", PASS, "a")
            results.append("ok")
        except WebError as exc:
            results.append(exc.reason)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(unlock)
    assert sorted(results) == ["busy", "ok", "ok"]


async def test_names_are_plain_file_names(directory: Path) -> None:
    sessions = store(directory, Clock())
    for name in ("../alice", ".alice", "sub/alice"):
        with pytest.raises(WebError) as refused:
            await sessions.unlock(name, PASS, "a")
        assert refused.value.reason == "malformed"
