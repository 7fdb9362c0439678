"""The custodian's shared pieces: its bounds and intervals, its counters, and the vault step
every part takes once a record's commitment is committed (a matching pending blob stored)."""

from __future__ import annotations

from dataclasses import dataclass, field

from health.contracts.records import RecordCommitment
from health.vault import Vault


@dataclass(frozen=True, slots=True)
class CustodianConfig:
    """Bounds and intervals of a custodian."""

    max_request_skew_ms: int = 60_000
    max_nonces: int = 100_000
    audit_queue_max: int = 4_096
    audit_interval_ms: int = 10_000
    commits_buffer: int = 64
    repair_queue_max: int = 1_024
    repair_attempts: int = 5
    repair_backoff_ms: int = 2_000
    repair_backoff_max_ms: int = 60_000
    request_timeout_ms: int = 10_000
    expire_interval_ms: int = 30_000
    reconcile_page: int = 256

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) < 1:
                raise ValueError(f"CustodianConfig.{name} must be >= 1")


@dataclass(slots=True)
class CustodianStats:
    """Counters since the start (operators' metrics)."""

    served: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    stores_served: int = 0
    uploads: int = 0
    keys_added: int = 0
    audit_queued: int = 0
    audit_dropped: int = 0
    audit_expired: int = 0
    audit_submitted: int = 0
    audit_batches: int = 0
    audit_rejected: int = 0
    erased: int = 0
    repairs_scheduled: int = 0
    repaired: int = 0
    repair_failed: int = 0
    repair_dropped: int = 0
    repair_mismatch: int = 0
    reconciliations: int = 0
    errors: int = 0


def store_committed(vault: Vault, record: RecordCommitment) -> bool:
    """Tell the vault that ``record``'s commitment is committed: a matching pending blob
    becomes stored (True when the vault holds a matching blob, see
    ``Vault.commitment_committed``)."""
    return vault.commitment_committed(
        record.id, record.owner, record.ciphertext_sha256, record.size_bytes
    )
