"""``bighealth testnet --health``: hospitals as genesis institutions and DAO members, clinics
and patients as observers, custodian keys in the homes, keystores for every party."""

from __future__ import annotations

from pathlib import Path

import pytest

from health.client.keystore import Keystore
from health.contracts.common import HealthRole, get_identity
from health.contracts.governance import get_member
from health.web.api import HealthWeb
from node.cli.composition import application_for
from node.cli.health_net import CUSTODIAN_KEY_FILE, health_extensions
from node.home import load_home, read_key_file
from tests.cli.test_cli_node import run_cli


def test_a_health_testnet_runs_the_health_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "net"
    code, manifest, err = run_cli(
        capsys, "testnet", "--validators", "4", "--observers", "2", "--health",
        "--clinics", "1", "--passphrase", "pw", "--output", str(out),
    )  # fmt: skip
    assert code == 0, err
    homes = [load_home(out / node["home"]) for node in manifest["nodes"]]
    genesis = homes[0].genesis
    assert genesis.accounts == () and genesis.app_state_modules() == ("governance", "identity")
    app = application_for(genesis)
    app.init_chain(genesis.genesis_time_ms)
    names = sorted(p.name for p in (out / "clients").iterdir())
    assert names == [
        "clinic-0.keystore",
        *(f"hospital-{i}.keystore" for i in range(4)),
        "patient-0.keystore",
    ]
    for index, home in enumerate(homes[:4]):
        custodian = read_key_file(home.home.path / CUSTODIAN_KEY_FILE, "account")
        keystore = Keystore.open(out / "clients" / f"hospital-{index}.keystore", "pw")
        assert keystore.identity_id == custodian.public_key
        identity = get_identity(app, custodian.public_key)
        assert identity is not None and identity.role is HealthRole.INSTITUTION
        assert identity.encryption_key == keystore.encryption_public_key
        member = get_member(app, custodian.public_key)
        assert member is not None and home.validator_key is not None
        assert member.validator_key == home.validator_key.public_key
        assert home.config.api.max_request_bytes > 1024 * 1024  # a whole record uploads
    patient = Keystore.open(out / "clients" / "patient-0.keystore", "pw")
    assert get_identity(app, patient.identity_id) is None  # registered on the running chain
    with health_extensions(homes[0]) as extensions:
        assert [extension.name for extension in extensions] == ["health", "health-web"]
        web = extensions[1]
        assert isinstance(web, HealthWeb)  # the health API: keystores of the home, its own API
        assert web.config.keystores == (homes[0].home.path / "keystores").resolve()
        assert web.config.node_url == f"http://{homes[0].config.api.listen}"
    with health_extensions(homes[0], keystores=out / "clients") as extensions:
        assert extensions[1].config.keystores == (out / "clients").resolve()  # type: ignore[attr-defined]
    assert (homes[0].home.path / "vault").is_dir()


def test_clinics_cannot_outnumber_the_observers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        capsys, "testnet", "--validators", "1", "--observers", "1", "--health", "--clinics",
        "2", "--output", str(tmp_path / "net"),
    )  # fmt: skip
    assert code == 1 and "--clinics" in err
