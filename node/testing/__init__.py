"""Shipped test doubles: deterministic fakes of every port, factories, conformance checks.

- ``ManualClock`` (a ``Clock``), ``SeededRng`` (an ``Rng``), ``MemoryStorage`` (a ``Storage``
  whose ``crash()`` loses unsynced writes), ``MemoryNetwork`` (a hub whose ``join`` gives
  ``Network`` endpoints; deterministic delivery, links that can be cut).
- ``key_pair``/``key_pairs``/``make_validators``/``TxFactory``: keys, validator sets and
  signed transactions from fixed labels.
- ``check_network_conformance``: the check any ``Network`` implementation must pass;
  ``check_storage_conformance`` (with ``MemoryStorageHarness``): the same for ``Storage``.

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
from node.testing.storage_conformance import (
    MemoryStorageHarness,
    StorageHarness,
    check_against_model,
    check_storage_conformance,
)

__all__ = [
    "ConformanceError",
    "ManualClock",
    "MemoryEndpoint",
    "MemoryNetwork",
    "MemoryNetworkHarness",
    "MemoryStorage",
    "MemoryStorageHarness",
    "NetworkHarness",
    "NetworkStats",
    "SeededRng",
    "StorageHarness",
    "StorageStats",
    "TxFactory",
    "ValidatorFixture",
    "check_against_model",
    "check_network_conformance",
    "check_storage_conformance",
    "key_pair",
    "key_pairs",
    "make_validators",
]
