"""Node benchmark: mempool admission, block execution, state root upkeep, block codec.

    python -m bench.node [--json PATH] [--repeat N] [--smoke]

Cases (``--repeat`` runs each; the table's ``best`` is the fastest run, as before, beside the
least, median and greatest figure of the runs; throughputs are per second of wall time):
- ``admit_1_thread``: transactions admitted (decode, chain id, Ed25519 signature, pool rules)
  on one thread; ``admit_2_threads``: batches of 256 split over two verifier threads
  (``verify_transactions``; PyNaCl releases the GIL), pool rules on the caller's thread —
  the shell's intended set-up.
- ``finalize_verify`` / ``finalize_preverified``: ``Application.finalize_block`` on blocks of
  ``kv.set`` transactions, checking each signature / trusting the mempool's checks.
- ``state_commit_insert`` / ``state_commit_update``: one commit of a block's changes to a
  state of ``state_keys`` entries (new keys shift leaves: full root over cached leaf hashes;
  value-only changes patch leaves in place), in ms per commit.
- ``block_encode`` / ``block_decode`` vs ``*_dicts``: a block whose txs are already-encoded
  bytes against the same block as a list of tx dicts.

``--smoke`` runs tiny sizes once so a test can keep the benchmark from rotting.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import msgpack

import crypto_core
from bench.common import (
    BestRow,
    Stats,
    bench_parser,
    best_columns,
    machine_facts,
    render_best,
    sizes_for,
    timed_repeats,
    write_case_rows,
)
from crypto_core.signatures import sha256
from node.app import (
    AccountsModule,
    AppConfig,
    Application,
    GenesisAccount,
    KvModule,
    Role,
    VersionedState,
    build_block,
)
from node.app.kv import set_payload
from node.codec import BLOCK_CODEC, MAX_BLOCK_BYTES, TX_CODEC, block_id
from node.mempool import Mempool, MempoolLimits, VerifiedTx, verify_transactions
from node.testing import TxFactory, key_pair
from node.types import ZERO_HASH, Block, BlockHeader, CommitCertificate, CommitSignature

CHAIN = "bench-chain"
GENESIS_MS = 1_700_000_000_000
# Transactions handed to the two verifier threads at a time (as a gossip batch would be).
ADMIT_BATCH = 256


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one run."""

    admit_txs: int
    accounts: int
    blocks: int
    txs_per_block: int
    state_keys: int
    changes_per_commit: int
    codec_txs: int


FULL = Sizes(4_000, 200, 8, 500, 100_000, 1_000, 1_000)
SMOKE = Sizes(60, 6, 2, 10, 500, 20, 20)


def rate_row(case: str, what: str, count: int, seconds: Stats, unit: str) -> BestRow:
    """``count`` per second: the fastest run's rate, and the spread of them all."""
    rates = seconds.per(count)
    return BestRow(case, what, rates.max, unit, rates)


def ms_row(case: str, what: str, seconds: Stats) -> BestRow:
    """Milliseconds: the fastest run's, and the spread of them all."""
    ms = seconds.scaled(1e3)
    return BestRow(case, what, ms.min, "ms", ms)


def signed_txs(sizes: Sizes, count: int) -> list[bytes]:
    """``count`` kv.set transactions spread round-robin over the accounts."""
    factory = TxFactory(CHAIN)
    keys = [key_pair(f"bench-{i}") for i in range(sizes.accounts)]
    return [
        factory.encoded(keys[i % len(keys)], "kv.set", set_payload(i.to_bytes(4, "big"), b"v" * 64))
        for i in range(count)
    ]


# -- mempool --------------------------------------------------------------------------------


def admission_rows(sizes: Sizes, repeat: int) -> list[BestRow]:
    raws = signed_txs(sizes, sizes.admit_txs)
    limits = MempoolLimits(max_txs=len(raws) + 1, max_txs_per_account=len(raws))

    def one_thread() -> None:
        pool = Mempool(CHAIN, limits)
        for raw in raws:
            pool.admit(raw, _zero_nonce)
        assert len(pool) == len(raws)

    def two_threads(executor: ThreadPoolExecutor) -> None:
        pool = Mempool(CHAIN, limits)
        verify = partial(verify_transactions, chain_id=CHAIN)
        for start in range(0, len(raws), ADMIT_BATCH):
            batch = raws[start : start + ADMIT_BATCH]
            halves = (batch[: len(batch) // 2], batch[len(batch) // 2 :])
            for results in executor.map(verify, halves):
                for verified in results:
                    assert isinstance(verified, VerifiedTx)
                    pool.add(verified, _zero_nonce)
        assert len(pool) == len(raws)

    single = timed_repeats(one_thread, repeat)
    with ThreadPoolExecutor(max_workers=2) as executor:
        double = timed_repeats(partial(two_threads, executor), repeat)
    n = len(raws)
    return [
        rate_row("admit_1_thread", f"{n} txs: verify + admit, one thread", n, single, "tx/s"),
        rate_row("admit_2_threads", f"{n} txs: verify on 2 threads, admit", n, double, "tx/s"),
    ]


def _zero_nonce(sender: bytes) -> int:
    return 0


# -- block execution ------------------------------------------------------------------------


def make_app(sizes: Sizes) -> Application:
    genesis = [
        GenesisAccount(key_pair(f"bench-{i}").public_key, Role.INSTITUTION)
        for i in range(sizes.accounts)
    ]
    accounts = AccountsModule(genesis)
    app = Application(AppConfig(CHAIN), [accounts, KvModule()], accounts)
    app.init_chain(GENESIS_MS)
    return app


def chain_of_blocks(app: Application, txs: list[bytes], per_block: int) -> list[Block]:
    """Blocks over ``txs`` that follow ``app``'s genesis (state roots filled by a dry run)."""
    blocks: list[Block] = []
    previous: BlockHeader | None = None
    for start in range(0, len(txs), per_block):
        commit = None
        if previous is not None:
            signature = CommitSignature(bytes(32), bytes(64))
            commit = CommitCertificate(CHAIN, previous.height, 0, block_id(previous), (signature,))
        block = build_block(
            chain_id=CHAIN,
            height=len(blocks) + 1,
            time_ms=GENESIS_MS + 1_000 * (len(blocks) + 1),
            previous_block_id=block_id(previous) if previous else ZERO_HASH,
            txs=txs[start : start + per_block],
            app_state_root=app.state_root,
            validator_set_hash=bytes(32),
            proposer=bytes(32),
            last_commit=commit,
        )
        app.finalize_block(block)
        blocks.append(block)
        previous = block.header
    return blocks


def finalize_rows(sizes: Sizes, repeat: int) -> list[BestRow]:
    txs = signed_txs(sizes, sizes.blocks * sizes.txs_per_block)
    blocks = chain_of_blocks(make_app(sizes), txs, sizes.txs_per_block)
    hashes = frozenset(sha256(raw) for raw in txs)

    def run(preverified: frozenset[bytes]) -> None:
        app = make_app(sizes)
        for block in blocks:
            result = app.finalize_block(block, preverified_tx_hashes=preverified)
            assert all(r.ok for r in result.receipts)

    n = len(txs)
    what = f"{sizes.blocks} blocks x {sizes.txs_per_block} kv.set"
    verify_s = timed_repeats(partial(run, frozenset()), repeat)
    trusted_s = timed_repeats(partial(run, hashes), repeat)
    return [
        rate_row("finalize_verify", f"{what}, signatures checked", n, verify_s, "tx/s"),
        rate_row("finalize_preverified", f"{what}, mempool-verified", n, trusted_s, "tx/s"),
    ]


# -- state root upkeep ----------------------------------------------------------------------


def state_rows(sizes: Sizes, repeat: int) -> list[BestRow]:
    base = {sha256(i.to_bytes(8, "big")): b"v" * 32 for i in range(sizes.state_keys)}
    keys = sorted(base)

    def commit_inserts() -> float:
        state = VersionedState.from_entries(0, base.items())
        fresh = {
            sha256(b"new" + i.to_bytes(8, "big")): b"n" for i in range(sizes.changes_per_commit)
        }
        return timed_repeats(partial(state.commit, 1, fresh), 1).min

    def commit_updates() -> float:
        state = VersionedState.from_entries(0, base.items())
        step = max(1, len(keys) // sizes.changes_per_commit)
        changed = {keys[i]: b"changed" for i in range(0, len(keys), step)}
        return timed_repeats(partial(state.commit, 1, changed), 1).min

    insert_s = Stats.of(commit_inserts() for _ in range(max(1, repeat)))
    update_s = Stats.of(commit_updates() for _ in range(max(1, repeat)))
    what = f"{sizes.changes_per_commit} keys into {sizes.state_keys}"
    return [
        ms_row("state_commit_insert", f"commit: {what} (new keys)", insert_s),
        ms_row("state_commit_update", f"commit: {what} (values only)", update_s),
    ]


# -- codec ----------------------------------------------------------------------------------


def codec_rows(sizes: Sizes, repeat: int) -> list[BestRow]:
    txs = signed_txs(sizes, sizes.codec_txs)
    block = build_block(
        chain_id=CHAIN,
        height=1,
        time_ms=GENESIS_MS + 1,
        previous_block_id=ZERO_HASH,
        txs=txs,
        app_state_root=bytes(32),
        validator_set_hash=bytes(32),
        proposer=bytes(32),
        last_commit=None,
    )
    data = BLOCK_CODEC.encode(block)
    as_dicts = [asdict(TX_CODEC.decode(raw)) for raw in txs]
    dict_data = msgpack.packb(as_dicts, use_bin_type=True)
    encode_s = timed_repeats(partial(BLOCK_CODEC.encode, block), repeat)
    decode_s = timed_repeats(partial(BLOCK_CODEC.decode, data), repeat)
    dict_encode_s = timed_repeats(partial(msgpack.packb, as_dicts, use_bin_type=True), repeat)
    dict_decode_s = timed_repeats(partial(msgpack.unpackb, dict_data, raw=False), repeat)
    n = len(txs)
    assert len(data) <= MAX_BLOCK_BYTES
    return [
        ms_row("block_encode", f"block of {n} encoded txs (canonical)", encode_s),
        ms_row("block_decode", f"block of {n} encoded txs (checked)", decode_s),
        ms_row("block_encode_dicts", f"the same {n} txs as dicts (raw msgpack)", dict_encode_s),
        ms_row("block_decode_dicts", f"the same {n} txs as dicts (raw msgpack)", dict_decode_s),
    ]


# -- report ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    return machine_facts(merkle_backend=crypto_core.BACKEND)


COLUMNS = best_columns(case=22, what=50, unit=5)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; see the module docstring for the options."""
    args = bench_parser("node", __doc__).parse_args(argv)
    sizes, repeat = sizes_for(args.smoke, SMOKE, FULL, args.repeat)
    rows = (
        admission_rows(sizes, repeat)
        + finalize_rows(sizes, repeat)
        + state_rows(sizes, repeat)
        + codec_rows(sizes, repeat)
    )
    info = machine()
    print(render_best(COLUMNS, rows, info, repeat))
    if args.json:
        write_case_rows(
            args.json,
            "node",
            info,
            rows,
            smoke=args.smoke,
            figures="values",
            repeat=repeat,
            sizes=asdict(sizes),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
