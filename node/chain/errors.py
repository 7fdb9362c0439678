"""Typed errors of the chain core (``node.core.NodeCore`` and its helpers).

Two kinds, as everywhere in the project. Bad input from peers is never raised out of
``NodeCore.handle``: it becomes a ``PeerMisbehaved`` action. What is raised here is either a
caller's or operator's mistake (a bad genesis or configuration, storage of another chain, a
query for a height that is not kept) or a condition under which a node must stop rather than
guess (``ChainHaltError``: a decided block that cannot be executed, a full disk).
"""

from __future__ import annotations

from node.errors import BigHealthError


class ChainError(BigHealthError):
    """Base of the errors of the chain core."""


class InvalidGenesisError(ChainError, ValueError):
    """A genesis document breaks a rule (empty validator set, bad parameter, duplicate key)."""


class InvalidConfigError(ChainError, ValueError):
    """A ``NodeConfig`` value is out of range."""


class StorageMismatchError(ChainError):
    """The storage belongs to another chain (its genesis hash differs) or is corrupt."""


class QueryError(ChainError, LookupError):
    """A query asked for something this node does not keep (e.g. a pruned height)."""


class ChainHaltError(ChainError):
    """The node cannot go on safely: a decided block does not execute, or storage failed.

    The shell must stop the node and alert its operator; restarting replays the durable log.
    """
