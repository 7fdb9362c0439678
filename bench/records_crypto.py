"""Part 3 of the records benchmark, in this process: re-wrapping data keys for a new
grantee, and for comparison sealing a 1 KiB record and wrapping one key."""

from __future__ import annotations

from collections.abc import Callable

import nacl.utils
from nacl.public import PrivateKey

from bench.common import timed_repeats
from bench.records_testnet import (
    Row,
    Sizes,
)
from health.contracts.common import ID_BYTES
from health.envelopes import (
    DATA_KEY_BYTES,
    NONCE_BYTES,
    rewrap_key,
    seal,
    wrap_key,
)

# -- 3. re-wrapping and sealing in this process ---------------------------------------------


def best_seconds(repeat: int, run: Callable[[], object]) -> float:
    """The least wall time of ``repeat`` runs (at least one)."""
    return timed_repeats(run, repeat).min


def crypto_rows(sizes: Sizes, repeat: int) -> list[Row]:
    """Part 3 (see the module docstring)."""
    owner, grantee = PrivateKey.generate(), PrivateKey.generate()
    owner_private, grantee_public = bytes(owner), bytes(grantee.public_key)
    records = []
    for _ in range(sizes.rewraps):
        record_id = nacl.utils.random(ID_BYTES)
        key = nacl.utils.random(DATA_KEY_BYTES)
        records.append((record_id, wrap_key(key, record_id, bytes(owner.public_key))))

    def rewrap_all() -> None:
        for record_id, wrapped in records:
            rewrap_key(wrapped, record_id, owner_private, grantee_public)

    content = nacl.utils.random(1024)
    record_id, data_key = nacl.utils.random(ID_BYTES), nacl.utils.random(DATA_KEY_BYTES)
    nonces = [nacl.utils.random(NONCE_BYTES) for _ in range(sizes.seals)]

    def seal_all() -> None:
        for nonce in nonces:
            seal(
                content,
                record_id=record_id,
                owner=record_id,
                key_epoch=0,
                data_key=data_key,
                nonce=nonce,
            )

    def wrap_all() -> None:
        for _ in range(sizes.seals):
            wrap_key(data_key, record_id, grantee_public)

    rewrap_s = best_seconds(repeat, rewrap_all)
    seal_s = best_seconds(repeat, seal_all)
    wrap_s = best_seconds(repeat, wrap_all)
    n = sizes.rewraps
    return [
        Row("rewrap_total", f"re-wrap the keys of {n} records for a grantee", rewrap_s * 1e3, "ms"),
        Row(
            "rewrap_per_record",
            "re-wrap one record's key (unwrap + wrap)",
            rewrap_s / n * 1e6,
            "µs",
        ),
        Row(
            "seal_1k", "seal a 1 KiB record (XChaCha20-Poly1305)", seal_s / sizes.seals * 1e6, "µs"
        ),
        Row("wrap_key", "wrap one data key (sealed box)", wrap_s / sizes.seals * 1e6, "µs"),
    ]
