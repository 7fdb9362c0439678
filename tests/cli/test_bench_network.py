"""``bighealth bench network``: its smoke run end to end on real node processes (the JSON's
keys and their sanity), and the parts that need no network: padding a transaction to a
size, parsing ``ss`` counters, percentiles, CPU shares, option checks."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from crypto_core.signatures import Ed25519KeyPair
from node.cli import main, testnet
from node.cli.bench import report
from node.cli.bench.facts import ProcessSample, cpu_percent, percentiles
from node.cli.bench.health_load import HealthBenchTestnet, reading_payload
from node.cli.bench.load import LoadError, Window, _encoded, kv_value_bytes
from node.cli.bench.network import BenchError, NetworkBenchOptions
from node.cli.bench.wire import bytes_between, parse_ss
from node.cli.health_net import HealthTestnet
from node.testing import SeededRng

SS_OUTPUT = """\
0      0      127.0.0.1:4001 127.0.0.1:50000
\t cubic wscale:7,7 rto:204 bytes_sent:1000 bytes_acked:1000 bytes_received:20
0      0      127.0.0.1:50000 127.0.0.1:4001
\t cubic bytes_sent:20 bytes_received:1000
0      0      127.0.0.1:8080 127.0.0.1:60000
\t cubic bytes_sent:999999 bytes_received:5
"""


def test_smoke_run_reports_sane_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    plot = tmp_path / "bench.png"
    assert main(["bench", "network", "--smoke", "--json", str(out), "--plot", str(plot)]) == 0
    report = json.loads(out.read_text())
    for key in (
        "committed_tx_per_s",
        "offered_tx_per_s",
        "finality_ms",
        "block_interval_ms",
        "nodes",
        "load_processes",
        "wire_bytes_per_tx",
        "ceilings",
        "achieved_over_ceiling",
        "machine",
        "results",
    ):
        assert key in report, key
    assert report["results"][0]["txs"]["committed_in_window"] > 0
    assert 0 < report["committed_tx_per_s"] <= report["offered_tx_per_s"]
    finality = report["finality_ms"]
    assert 0 < finality["p50"] <= finality["p95"] <= finality["p99"]
    blocks = report["block_interval_ms"]
    assert blocks["p50"] is not None and 0 <= blocks["p50"] <= blocks["p95"] <= blocks["p99"]
    assert report["ceilings"]["ed25519_verify_per_s"] > 0
    assert report["ceilings"]["leveldb_values_per_s"] > 0
    assert set(report["achieved_over_ceiling"]) == {"ed25519", "leveldb"}
    assert len(report["nodes"]) == report["options"]["validators"]
    for node in report["nodes"].values():
        assert node["cpu_percent"] is None or node["cpu_percent"] >= 0
        assert node["rss_mb"] is None or node["rss_mb"] > 0
    assert report["machine"]["cores"] >= 1
    assert plot.stat().st_size > 0


def test_a_transaction_is_padded_to_the_size_asked() -> None:
    key = Ed25519KeyPair.from_seed(bytes(32))
    for size in (200, 300, 1000):
        value = kv_value_bytes("bench-network", size)
        assert size - 4 <= len(_encoded("bench-network", key, 1_000, value)) <= size
    with pytest.raises(LoadError, match="at least"):
        kv_value_bytes("bench-network", 20)


def test_the_window_counts_requests_in_flight() -> None:
    window = Window(multiprocessing.Value("q", 0), multiprocessing.Value("q", 0), 100)
    assert window.reserve(70) == 70  # sent, no answer yet: already counted
    assert window.reserve(70) == 30  # only what fits
    assert window.reserve(1) == 0
    window.release(10)  # ten were refused
    assert window.reserve(50) == 10
    window.committed.value += 40  # the watcher saw them committed
    assert window.reserve(50) == 40
    assert int(window.accepted.value) - int(window.committed.value) == 100


def test_ss_counters_of_the_p2p_ports_only() -> None:
    counters = parse_ss(SS_OUTPUT, {4001})
    assert counters == {
        ("127.0.0.1:4001", "127.0.0.1:50000"): 1000,
        ("127.0.0.1:50000", "127.0.0.1:4001"): 20,
    }
    later = {key: value + 100 for key, value in counters.items()}
    later[("127.0.0.1:4001", "127.0.0.1:50001")] = 7  # a connection opened in between
    assert bytes_between(counters, later) == 207
    assert bytes_between(None, later) is None


def test_percentiles_and_cpu_share() -> None:
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None}
    figures = percentiles([float(v) for v in range(1, 101)])
    assert figures == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    before, after = ProcessSample(1.0, 10.0, 10.0, 100.0), ProcessSample(2.5, 12.0, 12.0, 103.0)
    assert cpu_percent(before, after) == 50.0
    assert cpu_percent(None, after) is None
    assert cpu_percent(after, before) is None


def test_options_out_of_range_are_refused() -> None:
    with pytest.raises(BenchError, match="validators"):
        NetworkBenchOptions(validators=0)
    with pytest.raises(BenchError, match="rate"):
        NetworkBenchOptions(rate_tx_per_s=-1.0)
    with pytest.raises(BenchError, match="kv or health"):
        NetworkBenchOptions(workload="bogus")
    assert NetworkBenchOptions(sweep=True).rates[-1] is None


def test_rate_must_be_max_or_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "network", "--rate", "fast"])
    assert "expected max or a rate" in capsys.readouterr().err


def test_the_health_genesis_lists_devices_paired_to_patients(tmp_path: Path) -> None:
    bench = HealthBenchTestnet(HealthTestnet(SeededRng("bench"), clinics=0), device_count=10)
    spec = testnet.TestnetSpec(validators=2, clients=0, chain_id="bench-network")
    testnet.create_testnet(tmp_path / "net", spec, SeededRng("bench"), bench)
    genesis = json.loads((tmp_path / "net" / "genesis.json").read_text())
    assert len(bench.devices) == 10
    patients = {d.patient for d in bench.devices}
    assert len(patients) == 2  # 8 devices to a patient
    hospitals = {d.custodian for d in bench.devices}
    assert len(hospitals) == 2  # patients spread over the hospitals
    assert genesis["chain_id"] == "bench-network"
    device = bench.devices[0]
    first = reading_payload(bytes(32), 3, device.patient, device.custodian)
    assert first != reading_payload(bytes(32), 4, device.patient, device.custodian)


@pytest.mark.slow
def test_health_smoke_run_commits_readings(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    code = main(["bench", "network", "--smoke", "--workload", "health", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["options"]["workload"] == "health"
    assert report["results"][0]["txs"]["committed_with_drain"] > 0
    assert report["results"][0]["refused"] == {}


def test_keep_refuses_a_directory_in_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "something").write_text("mine")
    assert main(["bench", "network", "--smoke", "--keep", str(tmp_path)]) == 1
    assert "not an empty directory" in capsys.readouterr().err


def test_a_sweep_plots_its_curve(tmp_path: Path) -> None:
    def phase(rate: float | None, offered: float, committed: float) -> dict[str, object]:
        finality = {"p50": 900.0, "p95": 1500.0, "p99": 2000.0}
        return {
            "offered_rate_tx_per_s": rate,
            "offered_tx_per_s": offered,
            "committed_tx_per_s": committed,
            "finality_ms": finality if committed else dict.fromkeys(finality),
        }

    document = {
        "options": {"sweep": True, "validators": 4, "workload": "kv"},
        "results": [phase(250.0, 249.0, 240.0), phase(500.0, 498.0, 0.0), phase(None, 900, 0.0)],
    }
    report.plot(document, [], tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").stat().st_size > 0
