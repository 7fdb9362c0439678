"""Signature checks shared by the simulated nodes of one process.

Every simulated node verifies every signature it receives, as a real node must — but in a
simulation the same vote reaches sixty validators and the same commit certificate a
thousand followers, all in one process, so the same Ed25519 check runs over and over.
:class:`SharedVerification` puts one bounded memo in front of every
``crypto_core.signatures.verify`` call of the process for the duration of a run (through
``crypto_core.signatures.shared_verification``). A run gives the same trace with or without it
(a test checks that); only the wall time changes.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType

from crypto_core.signatures import VerificationMemo, shared_verification
from netsim.limits import MAX_SIGNATURE_CACHE_ENTRIES

SignatureMemo = VerificationMemo


class SharedVerification:
    """Context manager: the node code's signature checks go through one memo."""

    def __init__(self, capacity: int = MAX_SIGNATURE_CACHE_ENTRIES) -> None:
        self._sharing: AbstractContextManager[VerificationMemo] = shared_verification(capacity)

    def __enter__(self) -> VerificationMemo:
        return self._sharing.__enter__()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._sharing.__exit__(kind, error, trace)
