"""Shipped test doubles: deterministic fakes of every port, factories, conformance checks.

- ``ManualClock`` (a ``Clock``), ``SeededRng`` (an ``Rng``), ``MemoryStorage`` (a ``Storage``
  whose ``crash()`` loses unsynced writes), ``MemoryNetwork`` (a hub whose ``join`` gives
  ``Network`` endpoints; deterministic delivery, links that can be cut).
- ``key_pair``/``key_pairs``/``make_validators``/``TxFactory``: keys, validator sets and
  signed transactions from fixed labels.
- ``check_network_conformance``: the check any ``Network`` implementation must pass.

Nothing here reads a clock or ambient randomness, so simulations built on it replay exactly.
"""

from node.testing.clock import ManualClock
from node.testing.conformance import (
    ConformanceError,
    MemoryNetworkHarness,
    NetworkHarness,
    check_network_conformance,
)
from node.testing.factories import (
    TxFactory,
    ValidatorFixture,
    key_pair,
    key_pairs,
    make_validators,
)
from node.testing.network import MemoryEndpoint, MemoryNetwork, NetworkStats
from node.testing.rng import SeededRng
from node.testing.storage import MemoryStorage, StorageStats

__all__ = [
    "ConformanceError",
    "ManualClock",
    "MemoryEndpoint",
    "MemoryNetwork",
    "MemoryNetworkHarness",
    "MemoryStorage",
    "NetworkHarness",
    "NetworkStats",
    "SeededRng",
    "StorageStats",
    "TxFactory",
    "ValidatorFixture",
    "check_network_conformance",
    "key_pair",
    "key_pairs",
    "make_validators",
]
