"""Signature checks shared by the simulated nodes of one process.

Every simulated node verifies every signature it receives, as a real node must — but in a
simulation the same vote reaches sixty validators and the same commit certificate a
thousand followers, all in one process, so the same Ed25519 check runs over and over.
Verification is a pure function of (public key, message, signature), so its answer can be
remembered: :class:`SharedVerification` puts a bounded memo in front of
``crypto_core.signatures.verify`` for the modules the node code verifies through, for the
duration of a run, and restores them afterwards. A run gives the same trace with or without
it (a test checks that); only the wall time changes.

The memo holds at most ``MAX_SIGNATURE_CACHE_ENTRIES`` answers and forgets the oldest
first (a signature is checked by many nodes within moments of each other, rarely later).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType, TracebackType
from typing import Final

from crypto_core import signatures
from netsim.limits import MAX_SIGNATURE_CACHE_ENTRIES

VERIFYING_MODULES: Final = (
    "consensus.verification",
    "node.codec",
    "node.app.accounts",
    "node.core",
)
"""Modules that bind ``crypto_core.signatures.verify`` at import (``from ... import verify``)."""

Verify = Callable[[bytes, bytes, bytes], bool]


class SignatureMemo:
    """A bounded memo of verification answers (oldest forgotten first)."""

    __slots__ = ("_answers", "_capacity", "_verify", "hits", "misses")

    def __init__(self, verify: Verify, capacity: int = MAX_SIGNATURE_CACHE_ENTRIES) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self._verify = verify
        self._capacity = capacity
        self._answers: dict[tuple[bytes, bytes, bytes], bool] = {}
        self.hits = 0
        self.misses = 0

    def __call__(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """``verify(public_key, message, signature)``, remembered."""
        if not (type(public_key) is bytes and type(message) is bytes and type(signature) is bytes):
            return self._verify(public_key, message, signature)  # its own type errors
        key = (public_key, message, signature)
        answer = self._answers.get(key)
        if answer is not None:
            self.hits += 1
            return answer
        self.misses += 1
        answer = self._verify(public_key, message, signature)
        answers = self._answers
        if len(answers) >= self._capacity:
            del answers[next(iter(answers))]  # dicts keep insertion order: the oldest
        answers[key] = answer
        return answer


class SharedVerification:
    """Context manager: route the node code's signature checks through one memo."""

    def __init__(self, capacity: int = MAX_SIGNATURE_CACHE_ENTRIES) -> None:
        self.memo = SignatureMemo(signatures.verify, capacity)
        self._replaced: list[tuple[ModuleType, Verify]] = []

    def __enter__(self) -> SignatureMemo:
        for name in VERIFYING_MODULES:
            module = importlib.import_module(name)
            current = getattr(module, "verify", None)
            if current is signatures.verify:
                self._replaced.append((module, current))
                vars(module)["verify"] = self.memo
        return self.memo

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for module, original in reversed(self._replaced):
            vars(module)["verify"] = original
        self._replaced.clear()
