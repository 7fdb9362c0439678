"""``GenesisModule``: the application module that anchors the genesis document in the state.

It writes the genesis hash under ``GENESIS_HASH_KEY`` at height 0, so the state root of the
genesis — which block 1 carries as its ``app_state_root`` — commits to the whole document:
a node started from another genesis disagrees about block 1 and can never join. Every
application a ``NodeCore`` runs includes it (``node.chain.application.ModuleRegistry`` adds
it; ``NodeCore.open`` checks). It has no transactions.
"""

from __future__ import annotations

from typing import Final

from crypto_core.signatures import sha256
from node.app.errors import TxFailed
from node.app.module import ExecContext, Module
from node.types import ResultCode, Transaction

GENESIS_MODULE: Final = "genesis"
GENESIS_HASH_KEY: Final = b"genesis/hash"
"""State key under which the genesis module stores the genesis hash."""


class GenesisModule(Module):
    """Writes the genesis hash into the genesis state (``GENESIS_HASH_KEY``); no actions.

    Every application a ``NodeCore`` runs must include it (``NodeCore.open`` checks)."""

    name = GENESIS_MODULE
    actions: frozenset[str] = frozenset()

    def __init__(self, genesis_hash: bytes) -> None:
        if type(genesis_hash) is not bytes or len(genesis_hash) != len(sha256(b"")):
            raise ValueError("the genesis hash is a 32-byte SHA-256 digest")
        self.genesis_hash = genesis_hash

    def init_genesis(self, ctx: ExecContext) -> None:
        ctx.view.set(GENESIS_HASH_KEY, self.genesis_hash)

    def deliver_tx(self, ctx: ExecContext, tx: Transaction) -> None:
        raise TxFailed(ResultCode.UNKNOWN_KIND, "the genesis module has no transactions")
