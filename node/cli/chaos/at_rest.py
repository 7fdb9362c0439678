"""Looking for known plaintext in every LevelDB of every node's home, nodes stopped.

``leveldbs(homes)`` finds each node's databases (a directory holding LevelDB's ``CURRENT``:
the chain store ``data`` and, on a health node, the records vault ``vault``).
``scan_at_rest`` opens each one read-only through ``LevelDBStorage`` (plyvel) and looks at
every key and value for every needle; it returns, per needle, where it occurs
(``node:directory``), and refuses (``AtRestError``) a node none of whose databases holds
anything (a scan that saw nothing proves nothing; a vault may be empty). Records sealed
on the client must never be found.

``markers``: byte strings of which every needle contains at least one (say
``b"resourceType"`` for FHIR JSON); an entry holding none of them holds no needle, so the
needles are only looked for in entries that hold a marker. Without markers every entry is
searched for every needle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from node.adapters.leveldb_store import LevelDBStorage
from node.errors import BigHealthError


class AtRestError(BigHealthError):
    """A database to scan holds nothing, or a marker is missing from a needle."""


def leveldbs(homes: Mapping[str, Path]) -> dict[str, list[Path]]:
    """Every LevelDB under each node's home (node name -> directories)."""
    return {
        name: sorted(current.parent for current in home.rglob("CURRENT"))
        for name, home in homes.items()
    }


def scan_at_rest(
    databases: Mapping[str, Sequence[Path]],
    chain_id: str,
    needles: Mapping[str, bytes],
    markers: Sequence[bytes] = (),
) -> dict[str, list[str]]:
    """Where each needle occurs (see the module docstring)."""
    for name, needle in needles.items():
        if markers and not any(marker in needle for marker in markers):
            raise AtRestError(f"needle {name!r} holds none of the markers")
    found: dict[str, set[str]] = {name: set() for name in needles}
    for node, paths in databases.items():
        entries = 0
        for path in paths:
            with LevelDBStorage(path, chain_id, create_if_missing=False) as storage:
                for key, value in storage.iterate_prefix(b""):
                    entries += 1
                    names = _needles_in(key, needles, markers) + _needles_in(
                        value, needles, markers
                    )
                    for name in names:
                        found[name].add(f"{node}:{path.name}")
        if entries == 0:
            raise AtRestError(f"{node}: no database under its home holds anything")
    return {name: sorted(where) for name, where in found.items()}


def _needles_in(data: bytes, needles: Mapping[str, bytes], markers: Sequence[bytes]) -> list[str]:
    if markers and not any(marker in data for marker in markers):
        return []
    return [name for name, needle in needles.items() if needle in data]
