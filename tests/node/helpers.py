"""A small chain driver and test modules for application tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consensus import DuplicateVoteEvidence
from node.app import (
    AccountsModule,
    AppConfig,
    Application,
    BlockResult,
    ExecContext,
    GenesisAccount,
    KvModule,
    Module,
    Role,
    TxFailed,
    build_block,
)
from node.app.accounts import register_payload
from node.app.due import DueTask
from node.app.view import ExecutionLimits
from node.codec import block_id
from node.testing import TxFactory, key_pair
from node.types import (
    ZERO_HASH,
    Block,
    BlockHeader,
    CommitCertificate,
    CommitSignature,
    ResultCode,
    Transaction,
)

CHAIN = "bh-test"
GENESIS_TIME_MS = 1_700_000_000_000
BLOCK_INTERVAL_MS = 1_000
INSTITUTION = key_pair("institution")
PROPOSER = key_pair("proposer")


class TestModule(Module):
    """Actions that exercise the framework's edges (name: ``probe``)."""

    name = "probe"
    actions = frozenset(
        {"write", "escape", "burn", "fail_after_write", "power", "tasks", "bad_task"}
    )

    def deliver_tx(self, ctx: ExecContext, tx: Transaction) -> None:
        action = tx.action
        if action == "write":
            ctx.view.set(b"probe/" + tx.payload, b"written")
            ctx.emit("written", key=tx.payload)
        elif action == "escape":
            ctx.view.set(b"kv/e/stolen", b"x")
        elif action == "burn":
            for i in range(1_000_000):
                ctx.view.set(b"probe/burn", i.to_bytes(8, "big"))
        elif action == "fail_after_write":
            ctx.view.set(b"probe/partial", b"x")
            ctx.emit("partial")
            ctx.set_validator_power(bytes(32), 5)
            raise TxFailed(ResultCode.CONFLICT, "refused after writing")
        elif action == "power":
            key, power = tx.payload[:32], int.from_bytes(tx.payload[32:], "big")
            ctx.set_validator_power(key, power)
        elif action == "tasks":
            count, delay = tx.payload[0], int.from_bytes(tx.payload[1:], "big")
            for i in range(count):
                ctx.schedule(ctx.block.time_ms + delay, "tick", bytes([i]))
        elif action == "bad_task":
            ctx.schedule(ctx.block.time_ms + 1, "explode")

    def on_due(self, ctx: ExecContext, task: DueTask) -> None:
        if task.kind == "explode":
            ctx.view.set(b"probe/exploded", b"x")
            raise TxFailed(ResultCode.EXECUTION_FAILED, "boom")
        ctx.view.set(b"probe/tick/" + task.payload, task.task_id)
        ctx.emit("tick", n=task.payload[0])


def make_app(limits: ExecutionLimits | None = None, retention: int = 100) -> Application:
    accounts = AccountsModule([GenesisAccount(INSTITUTION.public_key, Role.INSTITUTION)])
    config = AppConfig(CHAIN, limits=limits or ExecutionLimits(), state_retention_heights=retention)
    app = Application(config, [accounts, KvModule(), TestModule()], accounts)
    app.init_chain(GENESIS_TIME_MS)
    return app


@dataclass
class Chain:
    """Builds valid successive blocks for an application and finalizes them."""

    app: Application
    previous: BlockHeader | None = None

    @property
    def time_ms(self) -> int:
        """The time of the last block (the genesis time before the first)."""
        return GENESIS_TIME_MS if self.previous is None else self.previous.time_ms

    def next_block(
        self,
        txs: Sequence[bytes],
        *,
        time_ms: int | None = None,
        evidence: Sequence[DuplicateVoteEvidence] = (),
    ) -> Block:
        height = 1 if self.previous is None else self.previous.height + 1
        last_time = self.time_ms
        last_commit = None
        previous_id = ZERO_HASH
        if self.previous is not None:
            previous_id = block_id(self.previous)
            signature = CommitSignature(PROPOSER.public_key, bytes(64))
            last_commit = CommitCertificate(
                CHAIN, self.previous.height, 0, previous_id, (signature,)
            )
        return build_block(
            chain_id=CHAIN,
            height=height,
            time_ms=time_ms if time_ms is not None else last_time + BLOCK_INTERVAL_MS,
            previous_block_id=previous_id,
            txs=txs,
            app_state_root=self.app.state_root,
            validator_set_hash=bytes(32),
            proposer=PROPOSER.public_key,
            last_commit=last_commit,
            evidence=evidence,
        )

    def run(
        self,
        txs: Sequence[bytes],
        *,
        time_ms: int | None = None,
        evidence: Sequence[DuplicateVoteEvidence] = (),
    ) -> BlockResult:
        block = self.next_block(txs, time_ms=time_ms, evidence=evidence)
        result = self.app.finalize_block(block)
        self.previous = block.header
        return result


def register_txs(factory: TxFactory, *names: str, role: Role = Role.PATIENT) -> list[bytes]:
    """Transactions of the institution registering the key pairs of ``names``."""
    return [
        factory.encoded(
            INSTITUTION,
            "accounts.register",
            register_payload(
                key_pair(name), chain_id=CHAIN, registrar=INSTITUTION.public_key, role=role
            ),
        )
        for name in names
    ]


def registered(chain: Chain, factory: TxFactory, *names: str, role: Role = Role.PATIENT) -> None:
    """Register the key pairs of ``names`` with the institution, in one block."""
    result = chain.run(register_txs(factory, *names, role=role))
    assert all(r.ok for r in result.receipts), result.receipts
