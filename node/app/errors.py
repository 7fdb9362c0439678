"""Errors of transaction execution.

``TxFailed`` (and ``OutOfGas``) is the *expected* way a transaction fails: the framework turns
it into a receipt with its code and message and drops the transaction's writes. Any other
exception escaping a module is a bug and propagates out of ``finalize_block`` (a node must
halt rather than guess; a deterministic bug would halt every node alike, which is safer than
diverging). ``ModuleContractError`` is such a bug detected by the framework.
"""

from __future__ import annotations

from node.errors import BigHealthError
from node.types import ResultCode


class TxFailed(BigHealthError):
    """A transaction (or due task) did not apply; ``code`` says why."""

    def __init__(self, code: ResultCode, message: str) -> None:
        if code is ResultCode.OK:
            raise ValueError("a failure needs a code other than OK")
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class OutOfGas(TxFailed):
    """The transaction used up its gas limit."""

    def __init__(self, message: str) -> None:
        super().__init__(ResultCode.OUT_OF_GAS, message)


class ModuleContractError(BigHealthError):
    """A module broke the framework's contract (e.g. wrote outside its namespace)."""
