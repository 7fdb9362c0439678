"""The layer rules of ARCHITECTURE.md, checked on every module's imports (parsed, not run).

| package            | may import                                                     |
| crypto_core        | stdlib, pynacl                                                 |
| consensus          | stdlib, crypto_core                                            |
| node (pure)        | stdlib, consensus, crypto_core, msgpack, node pure modules     |
| node shell         | all of node, consensus, crypto_core, trio, stdlib, and the     |
|                    | adapters' libraries in their own module only                   |
| node.testing       | as node pure: the shipped fakes and checks (memory network and |
|                    | storage, key factories, the cluster driver, the signing ledger) |
| netsim             | node pure modules (node.testing included: the simulator reuses |
|                    | its fakes and checks), consensus, crypto_core, stdlib,         |
|                    | matplotlib, dask and distributed (in netsim.sweep only),       |
|                    | health pure modules                                            |
| netsim.live (shell)| netsim, node pure, node.home, node.api.client,                 |
|                    | node.cli.localnet (real node processes; only netsim.cli        |
|                    | imports it, to wire the ``live`` command)                      |
| health (pure)      | node pure modules, consensus, crypto_core, msgpack, nacl       |
| health shell       | health pure, node, trio, msgpack, nacl, pydantic (never        |
|                    | libp2p, netsim)                                                |

Only ``node.cli`` (the composition root) imports ``health``; the rest of ``node`` never does.

Pure code (crypto_core, consensus, node pure, health pure) never reads the wall clock or
ambient randomness: no ``time``, ``random``, ``secrets``, ``datetime`` and no ``os.urandom``.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = frozenset(sys.stdlib_module_names)
AMBIENT = frozenset({"time", "random", "secrets", "datetime"})
OUR_PACKAGES = frozenset({"crypto_core", "consensus", "node", "health", "netsim", "bench", "tests"})

# Modules of node/ that form the imperative shell (everything else in node/ is pure).
NODE_SHELL_PREFIXES = (
    "node.runtime",
    "node.adapters",
    "node.api",
    "node.cli",
    "node.home",  # reads and writes the home's files
    "node.__main__",
)
# Modules of health/ that form its shell (vault, record fetch, API routes, dashboard, client,
# meter simulator); everything else in health/ (contracts, envelopes, FHIR, statistics) is pure.
HEALTH_SHELL_PREFIXES = (
    "health.vault",
    "health.fetch",
    "health.web",
    "health.client",
    "health.meter",
    "health.api",
    "health.custodian",
    "health.extension",
    "health.demo",
)
# The one module (or package) allowed to import each I/O library.
ADAPTER_OWNERS = {
    "libp2p": ("node.adapters.libp2p",),
    "multiaddr": ("node.adapters.libp2p",),
    "plyvel": ("node.adapters.leveldb_store",),
}
# The network adapter is known to the composition root only: the rest of the node reaches
# the network through its ports (node.ports, node.runtime.network, node.errors).
LIBP2P_ADAPTER = "node.adapters.libp2p"
COMPOSITION_ROOTS = ("node.runtime.launch", "node.cli")
# The one netsim module that runs sweeps on a Dask cluster, and the libraries only it imports.
SWEEP_RUNNER = "netsim.sweep"
SWEEP_LIBRARIES = frozenset({"dask", "distributed"})
# netsim's shell: live runs of real node processes, beside the simulator. What of the node
# shell it may use, and the one netsim module that may import it (the command line).
NETSIM_SHELL = "netsim.live"
NETSIM_SHELL_USES = ("node.home", "node.api.client", "node.cli.localnet")
NETSIM_SHELL_WIRING = "netsim.cli"
# The one node module that draws plots (``bighealth bench network --plot``).
BENCH_PLOTTER = "node.cli.bench.report"


@dataclass(frozen=True)
class Imported:
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool) -> list[Imported]:
    """Every module imported by ``source`` (relative imports resolved), and ``os.urandom``."""
    found: list[Imported] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Imported(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append(Imported(module, base, node.lineno))
            found += [Imported(module, f"{base}.{a.name}", node.lineno) for a in node.names]
        elif (
            isinstance(node, ast.Attribute)
            and node.attr == "urandom"
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            found.append(Imported(module, "os.urandom", node.lineno))
    return found


def is_node_shell(module: str) -> bool:
    return module.startswith(NODE_SHELL_PREFIXES)


def is_health_shell(module: str) -> bool:
    return module.startswith(HEALTH_SHELL_PREFIXES)


def is_in(module: str, packages: tuple[str, ...]) -> bool:
    """True when ``module`` is one of ``packages`` or inside one of them."""
    return any(module == p or module.startswith(f"{p}.") for p in packages)


def is_pure(layer: str, module: str) -> bool:
    """True for the functional core: no clock, no randomness, no I/O libraries."""
    return (
        layer in ("crypto_core", "consensus")
        or (layer == "node" and not is_node_shell(module))
        or (layer == "health" and not is_health_shell(module))
    )


def violation(imp: Imported) -> str | None:
    """Why this import breaks the rules, or None."""
    top = imp.target.split(".")[0]
    layer = imp.module.split(".")[0]
    if layer in ("bench", "tests"):
        return None
    if imp.target.startswith(("bench", "tests")) and top in ("bench", "tests"):
        return "nothing imports bench/ or tests/"
    owners = ADAPTER_OWNERS.get(top)
    if owners is not None and not is_in(imp.module, owners):
        return f"only {', '.join(owners)} may import {top}"
    if is_in(imp.target, (LIBP2P_ADAPTER,)) and not is_in(
        imp.module, (LIBP2P_ADAPTER, *COMPOSITION_ROOTS)
    ):
        return f"only the composition root ({', '.join(COMPOSITION_ROOTS)}) imports the adapter"
    if top in SWEEP_LIBRARIES and imp.module != SWEEP_RUNNER:
        return f"only {SWEEP_RUNNER} imports {top}"
    if top == "health" and layer == "node" and not imp.module.startswith("node.cli"):
        return "only node.cli (the composition root) imports health"
    if is_pure(layer, imp.module) and (top in AMBIENT or imp.target == "os.urandom"):
        return f"pure code must not use {imp.target} (time and randomness come through ports)"
    if top == "matplotlib" and imp.module == BENCH_PLOTTER:
        return None
    return _layer_violation(layer, imp, top)


def _layer_violation(layer: str, imp: Imported, top: str) -> str | None:
    is_stdlib = top in STDLIB and top not in OUR_PACKAGES
    allowed: frozenset[str]
    if layer == "crypto_core":
        allowed = frozenset({"crypto_core", "nacl"})
    elif layer == "consensus":
        allowed = frozenset({"consensus", "crypto_core"})
    elif layer == "node" and is_node_shell(imp.module):
        allowed = frozenset(
            {
                "node",
                "consensus",
                "crypto_core",
                "trio",
                "msgpack",
                "nacl",
                "prometheus_client",
                "h11",
                "health",  # node.cli only: checked before
                *ADAPTER_OWNERS,
            }
        )
    elif layer == "node":
        if top == "node" and is_node_shell(imp.target):
            return "a pure node module must not import the node shell"
        allowed = frozenset({"node", "consensus", "crypto_core", "msgpack", "nacl"})
    elif layer == "netsim":
        if is_in(imp.target, (NETSIM_SHELL,)) and not is_in(
            imp.module, (NETSIM_SHELL, NETSIM_SHELL_WIRING)
        ):
            return f"only {NETSIM_SHELL_WIRING} imports the live runs' shell ({NETSIM_SHELL})"
        if is_in(imp.module, (NETSIM_SHELL,)) and is_in(imp.target, NETSIM_SHELL_USES):
            return None  # live runs start real node processes and talk to their API
        if (top == "node" and is_node_shell(imp.target)) or is_health_shell(imp.target):
            return "netsim drives the pure cores, never a shell"
        allowed = frozenset(
            {
                "netsim",
                "node",
                "health",
                "consensus",
                "crypto_core",
                "msgpack",
                "nacl",
                "matplotlib",
                *SWEEP_LIBRARIES,  # in SWEEP_RUNNER only: checked before
            }
        )
    elif layer == "health":
        return _health_violation(imp, top)
    else:
        return None
    if is_stdlib or top in allowed:
        return None
    return f"{layer} may not import {top}"


def _health_violation(imp: Imported, top: str) -> str | None:
    if top in ("netsim", "libp2p", "multiaddr"):
        return f"health never imports {top} (it goes through the node's network port)"
    if is_health_shell(imp.module):
        allowed = frozenset(
            {"health", "node", "consensus", "crypto_core", "trio", "msgpack", "nacl", "pydantic"}
        )
    else:
        if (top == "node" and is_node_shell(imp.target)) or is_health_shell(imp.target):
            return "the pure health code must not import a shell"
        allowed = frozenset({"health", "node", "consensus", "crypto_core", "msgpack", "nacl"})
    if (top in STDLIB and top not in OUR_PACKAGES) or top in allowed:
        return None
    return f"health may not import {top}"


def all_imports() -> list[Imported]:
    found: list[Imported] = []
    for package in ("crypto_core", "consensus", "node", "health", "netsim"):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = module_name(path)
            found += imports_of(path.read_text(), module, path.name == "__init__.py")
    return found


def test_every_module_keeps_the_layer_rules() -> None:
    imports = all_imports()
    assert len(imports) > 20  # the walk found the code
    problems = [
        f"{i.module}:{i.line} imports {i.target}: {why}" for i in imports if (why := violation(i))
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("consensus.driver", "import trio"),
        ("consensus.driver", "import time"),
        ("consensus.driver", "from node import types"),
        ("crypto_core.x", "import msgpack"),
        ("node.mempool", "import plyvel"),
        ("node.mempool", "import os\nos.urandom(4)"),
        ("node.core", "from node.runtime import Runtime"),
        ("node.runtime", "import plyvel"),
        ("node.runtime", "import netsim"),
        ("netsim.sim", "from node.adapters import libp2p"),
        ("node.runtime.node", "from node.adapters.libp2p import Libp2pNetwork"),
        ("node.api.gateway", "from node.adapters.libp2p.host import peer_id_of"),
        ("node.adapters.rpc", "import multiaddr"),
        ("node.adapters.libp2p_extra", "import libp2p"),
        ("netsim.sim", "import trio"),
        ("netsim.simulation", "import distributed"),
        ("netsim.cli", "from dask import delayed"),
        ("node.runtime.node", "import distributed"),
        ("node.codec", "from . import runtime"),
        ("node.core", "from health.contracts import consent"),
        ("node.testing.cluster", "from node.runtime import node"),
        ("node.testing.cluster", "import netsim"),
        ("node.api.routes", "import health"),
        ("health.contracts.care", "import time"),
        ("health.contracts.care", "import trio"),
        ("health.contracts.care", "from node.runtime import node"),
        ("health.contracts.care", "from health.vault import Vault"),
        ("health.vault", "import libp2p"),
        ("health.client", "import netsim"),
        ("netsim.workload", "from health.client import Client"),
        ("netsim.simulation", "from netsim.live import LiveRun"),
        ("netsim.simulation", "from node.cli.localnet import LocalNetwork"),
        ("netsim.live.run", "from node.runtime.launch import run_node"),
        ("netsim.live.run", "from node.api.http import serve_http"),
        ("netsim.live.run", "import trio"),
        ("netsim.live.run", "from health.client import HealthClient"),
    ],
)
def test_the_checker_catches_violations(module: str, source: str) -> None:
    found = imports_of(source, module, is_package=False)
    assert any(violation(i) for i in found)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("consensus.driver", "from crypto_core import hash_leaf\nimport hashlib"),
        ("node.codec", "import msgpack\nfrom consensus.types import Vote"),
        ("node.adapters.leveldb_store", "import plyvel"),
        ("node.adapters.libp2p.host", "import libp2p\nimport multiaddr"),
        ("node.runtime.launch", "from node.adapters.libp2p import Libp2pNetwork"),
        ("node.cli.testnet", "from node.adapters.libp2p import peer_id_of"),
        ("node.runtime", "import trio\nimport time"),
        ("netsim.sim", "import random\nfrom node.core import NodeCore"),
        ("node.cli.composition", "from health.contracts.registry import health_registry"),
        ("health.contracts.care", "from node.app.module import Module\nimport hashlib"),
        ("health.vault", "import trio\nfrom node.ports import Storage"),
        ("netsim.workload", "from health.contracts.consent import grant_payload"),
        ("netsim.checkers", "from node.testing.signing import SigningLedger"),
        ("netsim.sweep", "from distributed import Client, LocalCluster\nimport dask"),
        ("netsim.cli", "from netsim.live import add_live_parser"),
        ("netsim.live.run", "from node.cli.localnet import LocalNetwork\nimport subprocess"),
        ("netsim.live.workload", "from node.api.client import ApiClient"),
        ("netsim.live.run", "from node.home import read_key_file"),
        ("netsim.live.figures", "from netsim.report import summary_lines"),
    ],
)
def test_the_checker_allows_what_the_rules_allow(module: str, source: str) -> None:
    found = imports_of(source, module, is_package=False)
    assert [violation(i) for i in found if violation(i)] == []
