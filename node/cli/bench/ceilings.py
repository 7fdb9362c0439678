"""What the machine allows, measured in the same run as the load: the ceilings the achieved
rate is compared with.

- ``ed25519_verify_per_s``: Ed25519 verifications per second on all cores (one process per
  core, each verifying signatures of ~300-byte messages with PyNaCl for ``seconds``); every
  validator verifies every transaction once at least, so V validators on this host cannot
  commit more than this figure over V.
- ``leveldb``: synced LevelDB write batches as the node writes them (``LevelDBStorage
  .write_batch(..., sync=True)``, ``node.adapters.leveldb_store``): batches of
  ``BLOCK_VALUES`` values of ``VALUE_BYTES`` bytes (a block's state writes) per second and
  the values per second they carry, and single-value synced batches per second (the fsync
  rate).
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import nacl.signing

from node.adapters.leveldb_store import LevelDBStorage
from node.ports import Put

MESSAGE_BYTES: Final = 300
VALUE_BYTES: Final = 300
BLOCK_VALUES: Final = 500
SIGNATURES_SIGNED: Final = 64
"""Distinct signatures a verifier cycles through (signing is not what is timed)."""


@dataclass(frozen=True, slots=True)
class Ceilings:
    """The machine's ceilings (see the module docstring)."""

    ed25519_verify_per_s: float
    ed25519_processes: int
    leveldb_block_batches_per_s: float
    leveldb_values_per_s: float
    leveldb_single_synced_batches_per_s: float
    seconds_each: float

    def as_json(self) -> dict[str, Any]:
        return {
            key: round(value, 1) if isinstance(value, float) else value
            for key, value in asdict(self).items()
        }


def _verify_for(seconds: float) -> int:
    """Verifications done in ``seconds`` of wall time (runs in a worker process)."""
    signing_key = nacl.signing.SigningKey(bytes(range(32)))
    verify_key = signing_key.verify_key
    messages = [i.to_bytes(4, "big") + bytes(MESSAGE_BYTES - 4) for i in range(SIGNATURES_SIGNED)]
    signed = [(m, signing_key.sign(m).signature) for m in messages]
    done = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for message, signature in signed:
            verify_key.verify(message, signature)  # raises BadSignatureError if invalid
        done += len(signed)
    return done


def ed25519_verify_rate(seconds: float, processes: int) -> float:
    """Verifications per second of ``processes`` processes verifying at once."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        counts = pool.map(_verify_for, [seconds] * processes)
    return sum(counts) / seconds


def leveldb_rates(directory: Path, seconds: float) -> tuple[float, float]:
    """(synced block-sized batches per second, synced one-value batches per second) in a
    fresh database under ``directory``."""
    value = bytes(VALUE_BYTES)
    with LevelDBStorage(directory / "ceiling-db", "bench-ceiling") as storage:
        batches = 0
        started = time.monotonic()
        while time.monotonic() - started < seconds / 2:
            base = batches * BLOCK_VALUES
            ops = [Put((base + i).to_bytes(8, "big"), value) for i in range(BLOCK_VALUES)]
            storage.write_batch(ops, sync=True)
            batches += 1
        block_rate = batches / (time.monotonic() - started)
        singles = 0
        started = time.monotonic()
        while time.monotonic() - started < seconds / 2:
            storage.write_batch([Put(b"single" + singles.to_bytes(8, "big"), value)], sync=True)
            singles += 1
        single_rate = singles / (time.monotonic() - started)
    return block_rate, single_rate


def measure_ceilings(seconds: float = 2.0, processes: int | None = None) -> Ceilings:
    """Measure both ceilings for about ``2 * seconds`` (``processes``: one per core)."""
    count = processes or os.cpu_count() or 1
    verify_rate = ed25519_verify_rate(seconds, count)
    with tempfile.TemporaryDirectory(prefix="bench-ceiling-") as directory:
        block_rate, single_rate = leveldb_rates(Path(directory), seconds)
    return Ceilings(
        ed25519_verify_per_s=verify_rate,
        ed25519_processes=count,
        leveldb_block_batches_per_s=block_rate,
        leveldb_values_per_s=block_rate * BLOCK_VALUES,
        leveldb_single_synced_batches_per_s=single_rate,
        seconds_each=seconds,
    )
