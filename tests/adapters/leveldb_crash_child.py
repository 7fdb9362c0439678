"""Child process of the crash-consistency test: writes synced batches until it is killed.

    python -m tests.adapters.leveldb_crash_child DB_PATH CHAIN_ID KEYS_PER_BATCH

Batch ``n`` puts ``KEYS_PER_BATCH`` keys ``batch/<n>/<i>`` and ``last`` = ``n`` in one
``write_batch``, synced by the batch itself (even ``n``) or by a ``sync()`` after it (odd
``n``); then the child prints ``n`` (so the parent knows it is durable).
"""

from __future__ import annotations

import sys

from node.adapters.leveldb_store import LevelDBStorage
from node.ports import Put

VALUE_BYTES = 1024


def batch_ops(n: int, keys_per_batch: int) -> list[Put]:
    value = bytes([n % 256]) * VALUE_BYTES
    ops = [Put(b"batch/%08d/%05d" % (n, i), value) for i in range(keys_per_batch)]
    return [*ops, Put(b"last", b"%d" % n)]


def main() -> None:
    path, chain_id, keys_per_batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = LevelDBStorage(path, chain_id)
    print("open", flush=True)
    n = 0
    while True:
        if n % 2 == 0:
            store.write_batch(batch_ops(n, keys_per_batch), sync=True)
        else:
            store.write_batch(batch_ops(n, keys_per_batch))
            store.sync()
        print(n, flush=True)
        n += 1


if __name__ == "__main__":
    main()
