"""``POST /health/actions/<action>``: contract actions signed with the session's keystore.

Each action is a body model (``health.web.models``) and a runner that calls the session's
``HealthClient`` (``health.client.ContractActions`` and the record flows), in a worker
thread: the client signs with the keystore's current key, submits through this node's API
and waits for the receipt. The answer is the receipt of the action's last transaction (its
height, code, log and events) and what the action made (``result``: a grant's, access' or
referral's id, a proposal's number, the keys shared).

- A transaction the chain committed but refused (``TransactionFailed``) is answered 200
  with ``ok: false``, its code and log: it is on chain, its nonce is spent.
- Refused at admission (``TransactionRejected``): ``conflict`` (409), or ``busy`` (503) when
  the mempool is full; no receipt before the deadline (``ReceiptTimeout``): ``busy``
  (it may still commit); the node's API unreachable: ``busy``; a record flow that failed
  (``RecordError``) or an id the chain does not know: ``conflict``.
- ``grant`` re-wraps, for the grantee, the keys of the patient's records the grant covers
  (the newest ``MAX_SHARED_RECORDS``) and sends them to the custodians this node reaches
  (its own: the identities announced on chain with this node's peer id); ``set_plan``
  writes the plan's content as an encrypted ``CarePlan`` record of the patient kept by this
  node's custodian, then commits the schedule naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel

from health.client import (
    ClientError,
    HealthClient,
    ReceiptTimeout,
    RecordError,
    TransactionFailed,
    TransactionRejected,
)
from health.client.transactions import TxSender
from health.contracts.care import AlertLevel, ItemKind, ScheduleItem
from health.contracts.common import Purpose
from health.contracts.consent import (
    Grant,
    GrantStatus,
    grant_covers,
)
from health.contracts.governance import Choice
from health.contracts.identity import NODE_PREFIX, node_of_value
from health.contracts.records import OWNER_INDEX_PREFIX, get_record
from health.web.errors import WebError
from health.web.models import (
    AckAction,
    ActionOut,
    AlertAction,
    AnswerReferralAction,
    BreakGlassAction,
    DeactivateAction,
    DeclineReferralAction,
    EventOut,
    GrantAction,
    ProposeAction,
    ReferralAction,
    RequestReferralAction,
    RevokeAction,
    SetPlanAction,
    SetPolicyAction,
    VoteAction,
)
from node.api.client import ApiError
from node.errors import RejectReason
from node.runtime.extension import StateReader
from node.types import TxReceipt

MAX_SHARED_RECORDS: Final = 256
"""Records whose keys one ``grant`` re-wraps for the grantee (the newest first)."""
MAX_LOCAL_CUSTODIANS: Final = 8
PLAN_RESOURCE_TYPE: Final = "CarePlan"
PLAN_CODE: Final = "http://snomed.info/sct|698360004"
"""SNOMED CT "Diabetes self management plan": the code of the plan records written here."""
DEFAULT_PLAN: Final[Mapping[str, Any]] = {
    "resourceType": "CarePlan",
    "status": "active",
    "intent": "plan",
}


class KeepingSender(TxSender):
    """A ``TxSender`` that keeps the receipts it waited for (the last is the action's)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.receipts: list[TxReceipt] = []

    def wait(self, tx_hash_: bytes, timeout_s: float | None = None) -> TxReceipt:
        """As ``TxSender.wait``, keeping the receipt."""
        receipt = super().wait(tx_hash_, timeout_s)
        self.receipts.append(receipt)
        return receipt


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What a runner knows besides its body: the node's own API URL, the custodians this
    node keeps records for, the session's records a grant would cover, the clock."""

    node_url: str
    local_custodians: tuple[bytes, ...]
    covered_records: tuple[bytes, ...]
    now_ms: int


Runner = Callable[[HealthClient, Any, ActionContext], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Action:
    """An action: its body model, what it does, a line for the OpenAPI document."""

    body: type[BaseModel]
    run: Runner
    summary: str


def _id(text: str) -> bytes:
    return bytes.fromhex(text)


def _grant(client: HealthClient, body: GrantAction, context: ActionContext) -> dict[str, Any]:
    for custodian in context.local_custodians:
        client.add_custodian(custodian, context.node_url)
    result = client.grant(
        _id(body.grantee),
        expires_ms=body.expires_ms,
        purpose=Purpose[body.purpose.upper()],
        resource_types=body.resource_types,
        codes=body.codes,
        data_from_ms=body.data_from_ms,
        data_to_ms=body.data_to_ms,
        referral=b"" if body.referral is None else _id(body.referral),
        records=context.covered_records if body.share_records else (),
    )
    return {
        "grant": result.grant_id.hex(),
        "shared_records": len(result.shared.delivered),
        "share_failures": len(result.shared.failed),
    }


def _set_plan(client: HealthClient, body: SetPlanAction, context: ActionContext) -> dict[str, Any]:
    if not context.local_custodians:
        raise WebError("conflict", "this node keeps no records: the plan cannot be written here")
    patient = _id(body.patient)
    record = client.upload_record(
        dict(body.plan) if body.plan is not None else dict(DEFAULT_PLAN),
        owner=patient,
        resource_type=PLAN_RESOURCE_TYPE,
        code=PLAN_CODE,
        data_time_ms=context.now_ms,
        custodians=[(c, context.node_url) for c in context.local_custodians],
        readers=[client.identity_id],
    )
    commitment = client.record(record)
    if commitment is None:
        raise WebError("conflict", "the plan record was not committed")
    client.set_plan(
        patient,
        base_version=body.base_version,
        plan_record=record,
        plan_sha256=commitment.ciphertext_sha256,
        tz_offset_minutes=body.tz_offset_minutes,
        items=[
            ScheduleItem(item.item, ItemKind[item.kind.upper()], tuple(item.times_of_day_minutes))
            for item in body.items
        ],
    )
    return {"plan_record": record.hex()}


def _propose(client: HealthClient, body: ProposeAction, context: ActionContext) -> dict[str, Any]:
    if body.kind == "set_param":
        if body.name is None or body.value is None:
            raise WebError("malformed", "set_param needs name and value")
        return {"proposal": client.propose_set_param(body.name, body.value, body.reason)}
    if body.institution is None:
        raise WebError("malformed", f"{body.kind} needs institution")
    institution = _id(body.institution)
    if body.kind == "set_power":
        if body.power is None:
            raise WebError("malformed", "set_power needs power")
        return {"proposal": client.propose_set_power(institution, body.power, body.reason)}
    propose = {
        "suspend": client.propose_suspend,
        "reinstate": client.propose_reinstate,
        "remove": client.propose_remove,
    }[body.kind]
    return {"proposal": propose(institution, body.reason)}


def _receipt_only(call: Callable[[HealthClient, Any], object]) -> Runner:
    def run(client: HealthClient, body: Any, context: ActionContext) -> dict[str, Any]:
        call(client, body)
        return {}

    return run


def _id_result(name: str, call: Callable[[HealthClient, Any], bytes]) -> Runner:
    def run(client: HealthClient, body: Any, context: ActionContext) -> dict[str, Any]:
        return {name: call(client, body).hex()}

    return run


ACTIONS: Final[Mapping[str, Action]] = {
    "grant": Action(GrantAction, _grant, "Consent to a practitioner or institution"),
    "revoke": Action(
        RevokeAction,
        _receipt_only(lambda c, b: c.revoke(_id(b.grant))),
        "End one of the session patient's grants",
    ),
    "break_glass": Action(
        BreakGlassAction,
        _id_result("access", lambda c, b: c.break_glass(_id(b.patient), b.reason_code)),
        "Open emergency access to a patient (a practitioner)",
    ),
    "ack": Action(
        AckAction,
        _receipt_only(lambda c, b: c.ack(b.item, b.due_ms)),
        "Mark a reminder as done (a patient or its device)",
    ),
    "set_policy": Action(
        SetPolicyAction,
        _receipt_only(lambda c, b: c.set_policy(b.share_alerts)),
        "Let alerts go on chain for the plan's practitioner, or not",
    ),
    "alert": Action(
        AlertAction,
        _receipt_only(lambda c, b: c.alert(AlertLevel[b.level.upper()], _id(b.record))),
        "Record that a reading raised an alert",
    ),
    "set_plan": Action(SetPlanAction, _set_plan, "Set or change a patient's care plan"),
    "vote": Action(
        VoteAction,
        _receipt_only(lambda c, b: c.vote(b.proposal, Choice[b.choice.upper()])),
        "Vote on an open proposal (a member institution)",
    ),
    "propose": Action(ProposeAction, _propose, "Make a governance proposal (a member)"),
    "request_referral": Action(
        RequestReferralAction,
        _id_result(
            "referral",
            lambda c, b: c.request_referral(
                _id(b.patient),
                _id(b.to),
                specialty=b.specialty,
                reason_code=b.reason_code,
                expires_ms=b.expires_ms,
            ),
        ),
        "Refer a patient to a practitioner or institution",
    ),
    "accept_referral": Action(
        ReferralAction,
        _receipt_only(lambda c, b: c.accept_referral(_id(b.referral))),
        "Accept a referral",
    ),
    "decline_referral": Action(
        DeclineReferralAction,
        _receipt_only(lambda c, b: c.decline_referral(_id(b.referral), b.reason_code)),
        "Decline a referral",
    ),
    "answer_referral": Action(
        AnswerReferralAction,
        _receipt_only(lambda c, b: c.answer_referral(_id(b.referral), _id(b.answer_record))),
        "Answer an accepted referral with a record",
    ),
    "close_referral": Action(
        ReferralAction,
        _receipt_only(lambda c, b: c.close_referral(_id(b.referral))),
        "Close a referral we made",
    ),
    "deactivate": Action(
        DeactivateAction,
        _receipt_only(lambda c, b: c.deactivate(_id(b.identity))),
        "Deactivate ourselves or a child identity",
    ),
}
"""Every action, by the name in its path."""


def local_custodians(reader: StateReader, local_peer: str) -> tuple[bytes, ...]:
    """The identities whose announced node (``identity/n/<id>``) is ``local_peer``."""
    found = []
    for key, value in reader.iterate(NODE_PREFIX, 1_000):
        if node_of_value(value) == local_peer:
            found.append(key[len(NODE_PREFIX) :])
            if len(found) == MAX_LOCAL_CUSTODIANS:
                break
    return tuple(found)


def covered_records(
    reader: StateReader, owner: bytes, body: GrantAction, now_ms: int
) -> tuple[bytes, ...]:
    """The newest ``MAX_SHARED_RECORDS`` live records of ``owner`` a grant of ``body``'s
    scope would cover."""
    scope = Grant(
        id=bytes(32),
        patient=owner,
        grantee=_id(body.grantee),
        purpose=Purpose[body.purpose.upper()],
        resource_types=tuple(body.resource_types),
        codes=tuple(body.codes),
        data_from_ms=body.data_from_ms,
        data_to_ms=body.data_to_ms,
        issued_ms=now_ms,
        expires_ms=max(body.expires_ms, now_ms + 1),
        status=GrantStatus.ACTIVE,
        referral=b"",
        ended_ms=0,
        expiry_task=b"",
    )
    found: list[bytes] = []
    for key, _ in reversed(reader.iterate(OWNER_INDEX_PREFIX + owner, 1_000)):
        record = get_record(reader, key[-32:])
        if record is None or record.erased:
            continue
        if grant_covers(
            scope,
            resource_type=record.resource_type,
            code=record.code,
            data_time_ms=record.data_time_ms,
            now_ms=now_ms,
            purposes=(scope.purpose,),
        ):
            found.append(record.id)
            if len(found) == MAX_SHARED_RECORDS:
                break
    return tuple(found)


def run_action(
    client: HealthClient, name: str, body: Any, context: ActionContext
) -> tuple[dict[str, Any], TxReceipt, int]:
    """Run ``name`` with the session's client (blocking: a worker thread); its result, the
    last receipt and its height. Errors as ``WebError`` (see the module docstring)."""
    sender = client.tx
    if not isinstance(sender, KeepingSender):
        raise TypeError("the session's client must send with a KeepingSender")
    sender.receipts.clear()
    try:
        result = ACTIONS[name].run(client, body, context)
    except TransactionFailed as exc:
        result = {}
        sender.receipts.append(exc.receipt)
    except TransactionRejected as exc:
        reason = "busy" if exc.reason == RejectReason.MEMPOOL_FULL.value else "conflict"
        raise WebError(reason, str(exc)) from None
    except ReceiptTimeout as exc:
        raise WebError("busy", str(exc), retry_after_s=1) from None
    except RecordError as exc:
        raise WebError("conflict", f"{exc.reason}: {exc}") from None
    except ApiError as exc:
        raise WebError("busy", f"this node's API did not answer: {exc}") from None
    except ClientError as exc:
        raise WebError("conflict", str(exc)) from None
    except ValueError as exc:
        raise WebError("malformed", str(exc)) from None
    if not sender.receipts:
        raise WebError("conflict", f"{name} sent no transaction")
    receipt = sender.receipts[-1]
    committed = client.node.tx_receipt(receipt.tx_hash)
    height = 0 if committed is None else committed.height
    return result, receipt, height


def action_out(name: str, result: dict[str, Any], receipt: TxReceipt, height: int) -> ActionOut:
    """The answer of an action."""
    return ActionOut(
        action=name,
        tx_hash=receipt.tx_hash.hex(),
        height=height,
        ok=receipt.ok,
        code=receipt.code.name.lower(),
        log=receipt.log,
        events=[
            EventOut(kind=event.name, attributes={a.key: a.value for a in event.attributes})
            for event in receipt.events
        ],
        result=result,
    )


def names() -> Sequence[str]:
    """The actions' names, sorted."""
    return sorted(ACTIONS)
