"""A campaign's result: its JSON document, its table, and the reliability report.

``CampaignResult`` is what ``bighealth chaos`` measured; ``document()`` gives the JSON of
``--json`` (the keys of ``REQUIRED_KEYS`` at least; ``violations`` empty when every
invariant held), ``table()`` the lines printed at the end. ``render_reliability`` makes
``docs/RELIABILITY.md`` from one or more campaign documents, with the fuzzing and attack
figures when they are given (``bighealth chaos report``, ``python -m bench.reliability``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

REQUIRED_KEYS: Final = (
    "seed",
    "kills",
    "pauses",
    "partitions",
    "blocks_lost",
    "double_signs",
    "records_lost",
    "plaintext_found_at_rest",
    "max_recovery_s",
    "violations",
)


class ReportError(ValueError):
    """A campaign document lacks a key the report needs."""


@dataclass
class CampaignResult:
    """What one campaign did and found (every count over the whole run)."""

    seed: int
    validators: int
    nodes: int
    liveness_bound_s: float
    duration_s: float = 0.0
    episodes: int = 0
    kills: int = 0
    skewed_restarts: int = 0
    pauses: int = 0
    partitions: int = 0
    one_way_losses: int = 0
    final_height: int = 0
    heights_compared: int = 0
    votes_scanned: int = 0
    blocks_lost: int = 0
    double_signs: int = 0
    records_acknowledged: int = 0
    uploads_failed: int = 0
    upload_failures: dict[str, int] = field(default_factory=dict)
    """Failed uploads by error type (an upload may fail while nodes are down)."""
    records_lost: int = 0
    plaintext_found_at_rest: int = 0
    max_recovery_s: float = 0.0
    mean_recovery_s: float = 0.0
    recoveries: list[float] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The JSON document (``recoveries`` summarised, the fault log kept)."""
        document = asdict(self)
        del document["recoveries"]
        return document

    def add_recovery(self, seconds: float) -> None:
        """One heal's recovery time."""
        self.recoveries.append(seconds)
        self.max_recovery_s = round(max(self.recoveries), 2)
        self.mean_recovery_s = round(sum(self.recoveries) / len(self.recoveries), 2)

    @property
    def ok(self) -> bool:
        """True when every invariant held."""
        return not self.violations


def table(document: Mapping[str, Any]) -> list[str]:
    """The summary lines of one campaign document."""
    check(document)
    rows = [
        ("seed", document["seed"]),
        ("faults: kill -9 (of them, skewed-clock restarts)",
         f"{document['kills']} ({document.get('skewed_restarts', 0)})"),
        ("faults: pauses / partitions / one-way losses",
         f"{document['pauses']} / {document['partitions']} / {document.get('one_way_losses', 0)}"),
        ("heights committed / votes scanned",
         f"{document.get('final_height', 0)} / {document.get('votes_scanned', 0)}"),
        ("records acknowledged (uploads failed)",
         f"{document.get('records_acknowledged', 0)} ({document.get('uploads_failed', 0)})"),
        ("blocks lost", document["blocks_lost"]),
        ("double signs", document["double_signs"]),
        ("records lost", document["records_lost"]),
        ("plaintext found at rest", document["plaintext_found_at_rest"]),
        ("longest / mean recovery (s)",
         f"{document['max_recovery_s']} / {document.get('mean_recovery_s', 0)}"),
        ("violations", len(document["violations"])),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    return [f"  {name:<{width}}  {value}" for name, value in rows]


def check(document: Mapping[str, Any]) -> bool:
    """True if ``document`` has every key of ``REQUIRED_KEYS`` (``ReportError`` if not)."""
    missing = [key for key in REQUIRED_KEYS if key not in document]
    if missing:
        raise ReportError(f"the campaign document lacks {missing}")
    return True


@dataclass(frozen=True, slots=True)
class Figures:
    """Counts from elsewhere (fuzzing, access attacks): a label, a count, where from."""

    label: str
    count: int
    source: str


def render_reliability(
    campaigns: Sequence[Mapping[str, Any]], extra: Sequence[Figures] = (), notes: str = ""
) -> str:
    """``docs/RELIABILITY.md``: one column per campaign document, then ``extra``, the
    violations, and ``notes`` (Markdown) under "Notes"."""
    campaigns = [{**c, "violation_count": len(c["violations"])} for c in campaigns if check(c)]
    head = ["what", *(f"campaign {i + 1}" for i in range(len(campaigns)))]
    rows = [[label, *(str(c.get(key, "?")) for c in campaigns)] for label, key in _ROWS]
    lines = [*_PREAMBLE, _row(head), _row(["---"] * len(head)), *(_row(r) for r in rows)]
    if extra:
        lines += ["", "| elsewhere | count | from |", "|---|---|---|"]
        lines += [_row([f.label, str(f.count), f.source]) for f in extra]
    else:
        lines += ["", "Fuzzing and access-attack figures were not given to this report."]
    violations = [v for c in campaigns for v in c["violations"]]
    lines += ["", "## Violations", ""]
    lines += [f"- {v}" for v in violations] if violations else ["None: every invariant held."]
    if notes.strip():
        lines += ["", "## Notes", "", notes.strip()]
    return "\n".join([*lines, *_EPILOGUE]) + "\n"


_ROWS: Final = (
    ("seed", "seed"),
    ("validators", "validators"),
    ("nodes", "nodes"),
    ("duration (s)", "duration_s"),
    ("faults: kill -9", "kills"),
    ("… of them restarts with a skewed clock", "skewed_restarts"),
    ("faults: pauses (SIGSTOP/SIGCONT)", "pauses"),
    ("faults: partitions", "partitions"),
    ("faults: one-way link losses", "one_way_losses"),
    ("heights committed", "final_height"),
    ("votes and proposals scanned", "votes_scanned"),
    ("records acknowledged", "records_acknowledged"),
    ("**blocks lost**", "blocks_lost"),
    ("**double signs**", "double_signs"),
    ("**records lost**", "records_lost"),
    ("**plaintext found at rest**", "plaintext_found_at_rest"),
    ("longest recovery (s)", "max_recovery_s"),
    ("mean recovery (s)", "mean_recovery_s"),
    ("liveness bound (s)", "liveness_bound_s"),
    ("violations", "violation_count"),
)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


_PREAMBLE: Final = (
    "# Reliability",
    "",
    "Generated by `python -m bench.reliability --json A.json --json B.json [--notes FILE] > "
    "docs/RELIABILITY.md` from the JSON of `bighealth chaos` runs; do not edit by hand.",
    "",
    "`bighealth chaos` runs a health network of node processes on one host (hospitals'",
    "validators and a patient's node, the patient's glucose readings uploaded as encrypted",
    "records all along) and injects faults from a seeded schedule: `kill -9` and restart,",
    "restarts with a skewed clock, SIGSTOP/SIGCONT pauses, partitions and one-way link losses",
    "(through the fault gate of `bighealth run --fault-gate`). After every heal it checks,",
    "through the nodes' APIs, that no two nodes hold different blocks at a height, that nodes",
    "at one height agree on the state root, that no node's committed height went back, and",
    "that every node commits again within the liveness bound. At the end every acknowledged",
    "record is fetched back and decrypted; then, nodes stopped, it reads every node's stores",
    "(the block ids and execution results of each height must agree; every vote and proposal",
    "in the blocks' certificates and in the consensus logs is judged for double signs) and",
    "scans every LevelDB of every node for the records' plaintext.",
    "",
)
_EPILOGUE: Final = (
    "",
    "Fuzzing of the decoders is described in [FUZZING.md](FUZZING.md). Limits of the",
    "campaign: one host, so the disks and clocks are shared (a skew is an offset on the",
    "node's clock, not the OS's); only the log of the height under way survives in a",
    "node's write-ahead log, so votes of committed heights are judged from the certificates",
    "the blocks carry.",
)
