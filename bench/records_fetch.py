"""Part 2 of the records benchmark: fetches between two nodes — a practitioner of
hospital-1 reading, through its own node and libp2p, a reading kept by hospital-0 alone,
and the same requests sent straight to hospital-0's node."""

from __future__ import annotations

import statistics
import time
from functools import partial
from pathlib import Path

import nacl.utils

from bench.records_testnet import (
    CGM_CODE,
    Row,
    Sizes,
    health_testnet,
    new_party,
    now_ms,
    reading,
    run_threads,
)
from health.client import HealthClient, NodeClient, RecordError
from health.contracts.common import GLUCOSE_RESOURCE_TYPE, HealthRole
from health.records_wire import FETCH_REQUEST_CODEC, sign_fetch_request
from health.records_wire import NONCE_BYTES as FETCH_NONCE_BYTES
from node.api.client import ApiError

# -- 2. fetches between two nodes -----------------------------------------------------------


def fetch_rows(directory: Path, sizes: Sizes) -> list[Row]:
    """Part 2 (see the module docstring)."""
    with health_testnet(directory / "two-nodes", validators=2, sizes=sizes) as net:
        hospitals = [net.hospital(0), net.hospital(1)]
        patient = new_party(directory, "patient2", HealthRole.PATIENT, net.url(0), net.chain_id)
        doctor = new_party(directory, "doctor", HealthRole.PRACTITIONER, net.url(1), net.chain_id)
        setups = [
            partial(_announce_and_register, hospitals[i], str(net.node(i)["peer_id"]), party, role)
            for i, party, role in (
                (0, patient, HealthRole.PATIENT),
                (1, doctor, HealthRole.PRACTITIONER),
            )
        ]
        if errors := run_threads(setups):
            raise RuntimeError(f"set-up failed: {errors}\n{net.logs()}")
        net.wait_until(lambda: patient.identity(doctor.identity_id), "the practitioner on node 0")
        time_ms = now_ms() - 1_000
        record = patient.upload_record(
            reading(0, time_ms),
            resource_type=GLUCOSE_RESOURCE_TYPE,
            code=CGM_CODE,
            data_time_ms=time_ms,
            custodians=[(hospitals[0].identity_id, net.url(0))],
            readers=[doctor.identity_id],
        )
        patient.grant_only(
            doctor.identity_id,
            expires_ms=now_ms() + 3_600_000,
            resource_types=[GLUCOSE_RESOURCE_TYPE],
        )
        net.wait_until(lambda: _readable(doctor, record), "the record readable on node 1")
        custodian = hospitals[0].identity_id
        remote = timed_fetches(doctor, doctor.node, record, custodian, sizes.fetches)
        local = timed_fetches(doctor, hospitals[0].node, record, custodian, sizes.fetches)
    n = sizes.fetches
    return [
        Row(
            "fetch_p50",
            f"{n} fetches via hospital-1's node (libp2p hop): p50",
            statistics.median(remote),
            "ms",
        ),
        Row(
            "fetch_p99",
            f"{n} fetches via hospital-1's node (libp2p hop): p99",
            percentile(remote, 0.99),
            "ms",
        ),
        Row(
            "fetch_local_p50",
            f"{n} fetches at hospital-0's node (the custodian): p50",
            statistics.median(local),
            "ms",
        ),
        Row(
            "fetch_local_p99",
            f"{n} fetches at hospital-0's node (the custodian): p99",
            percentile(local, 0.99),
            "ms",
        ),
    ]


def _announce_and_register(
    hospital: HealthClient, peer_id: str, party: HealthClient, role: HealthRole
) -> None:
    """A hospital names its node on chain and registers ``party``."""
    hospital.announce_node(peer_id)
    kind = "endocrinology" if role is HealthRole.PRACTITIONER else ""
    label = "Dr Bench" if role is HealthRole.PRACTITIONER else ""
    hospital.register(*party.keystore.admission_keys(), role=role, kind=kind, label=label)


def _readable(doctor: HealthClient, record: bytes) -> bool:
    """True once the practitioner reads the record through its node (the record, the grant
    and the custodian's node known there), decrypted and checked. A refusal while node 1 is
    a block behind is waited out."""
    try:
        resource = doctor.read_record(record)
    except RecordError as exc:
        if exc.reason in {"not_found", "forbidden", "no_custodian"}:
            return False
        raise
    except ApiError:
        return False
    if resource.get("id") != "cgm-0":
        raise RuntimeError(f"the record read back is not the reading uploaded: {resource}")
    return True


def timed_fetches(
    doctor: HealthClient, node: NodeClient, record: bytes, custodian: bytes, count: int
) -> list[float]:
    """``count`` fetches of ``record`` at ``node``, each a freshly signed request: the
    milliseconds of each API call."""
    latencies = []
    for _ in range(count):
        request = sign_fetch_request(
            doctor.keystore.signer,
            chain_id=doctor.chain_id,
            requester=doctor.identity_id,
            record=record,
            custodian=custodian,
            nonce=nacl.utils.random(FETCH_NONCE_BYTES),
            time_ms=now_ms(),
        )
        encoded = FETCH_REQUEST_CODEC.encode(request)
        started = time.perf_counter()
        fetched = node.fetch_record(encoded)
        latencies.append((time.perf_counter() - started) * 1e3)
        if fetched.record != record or fetched.custodian != custodian:
            raise RuntimeError("a fetch answered another record or custodian")
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    """The sorted value nearest the ``fraction`` (0..1) position in ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
