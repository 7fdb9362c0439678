"""``node.cli.localnet``: node processes of a testnet directory started, waited for and
stopped — here with stand-in nodes (a small HTTP server each) so no chain is needed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from node.cli.localnet import LocalNetError, LocalNetwork
from node.cli.testnet import free_ports
from node.home.manifest import ManifestNode
from node.home.manifest import TestnetManifest as Manifest

_FAKE_NODE = """
import http.server, signal, sys
port = int(sys.argv[1])
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
        self.wfile.write(b'{"status": "ok", "height": 3}')
    def log_message(self, *args): pass
server = http.server.HTTPServer(("127.0.0.1", port), Health)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("answering", flush=True)
server.serve_forever()
"""


def _fake_net(tmp_path: Path, *, broken: str = "") -> LocalNetwork:
    ports = free_ports("127.0.0.1", 2)
    nodes = tuple(
        ManifestNode(f"n{i}", f"n{i}", "validator", "", "", f"127.0.0.1:{port}", None)
        for i, port in enumerate(ports)
    )
    for node in nodes:
        (tmp_path / node.home).mkdir()
    manifest = Manifest("fake", "", nodes, ())
    port_of = {tmp_path / node.home: node.api.rsplit(":", 1)[1] for node in nodes}

    def command(home: Path) -> list[str]:
        if home.name == broken:
            return [sys.executable, "-c", "import sys; print('no genesis'); sys.exit(1)"]
        return [sys.executable, "-c", _FAKE_NODE, port_of[home]]

    return LocalNetwork(tmp_path, manifest, command=command, stop_timeout_s=5)


def test_a_local_network_starts_answers_and_stops(tmp_path: Path) -> None:
    with _fake_net(tmp_path) as net:
        net.start()
        assert net.wait_answering(20) < 20
        assert net.wait_height(3, 20) < 20
        with pytest.raises(LocalNetError, match="did not reach height 4"):
            net.wait_height(4, 0.3)
        assert net.api_url("n1").startswith("http://127.0.0.1:")
        net.check_alive()
        assert net.stop("n0") == 0
        pids = [process.pid for process in net.processes.values()]
    assert net.processes == {}
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)
    assert "answering" in net.log_tail("n1")


def test_a_node_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    with _fake_net(tmp_path, broken="n1") as net:
        net.start()
        with pytest.raises(LocalNetError, match="n1 exited with status 1") as failed:
            net.wait_answering(20)
    assert "no genesis" in str(failed.value)
