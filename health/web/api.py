"""``HealthWeb``: the health API every health node serves, as a node extension.

All JSON, under ``/health/...``, beside the node's own API and the records routes
(``health.api``); ``GET /openapi.json`` documents all three (``health.web.openapi``). The
route table is ``HealthWeb.specs()`` (``health.web.routing.RouteSpec``): the same table
serves and documents.

- Reads of the committed state (``health.web.reads``), open to whoever reaches the API
  (what they show is on chain, readable through ``/state`` anyway): identities,
  institutions, children, grants, consented patients, plan, reminders, adherence,
  referrals, the DAO, proposals, the audit log; ``/health/network`` from this node's status
  and last blocks (``health.web.network``).
- Sessions (``health.web.session``): ``POST /health/session`` unlocks a keystore of the
  operator's keystore directory (``WebConfig.keystores``) and answers a token, also set as
  an HttpOnly, SameSite=Strict cookie; ``DELETE /health/session``; ``GET /health/me``.
- With a session: the patient's decrypted readings and glucose statistics
  (``health.web.readings``: decryption happens here, on the user's own node, with the
  session's keys) and contract actions (``health.web.actions``) signed with the session's
  keystore.

The session's ``HealthClient`` talks to this node's own API (``WebConfig.node_url``, on
loopback) from worker threads (at most ``max_worker_threads`` at once); one keystore's work
is serialised by its lock. Worker calls are bounded in time below the node's handler
timeout: ``receipt_timeout_s`` for a transaction, ``read_budget_s`` for decryption.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import trio
from pydantic import ValidationError

from health.client import HealthClient, NodeClient
from health.client.node_client import HttpTransport
from health.contracts.common import DAY_MS
from health.web import reads
from health.web.actions import (
    ACTIONS,
    ActionContext,
    KeepingSender,
    action_out,
    covered_records,
    local_custodians,
    run_action,
)
from health.web.errors import WebError
from health.web.models import (
    ActionOut,
    AdherenceOut,
    AuditOut,
    ChildrenOut,
    DaoOut,
    GlucoseStatsOut,
    GrantsOut,
    IdentityOut,
    InstitutionsOut,
    ListQuery,
    MeOut,
    NetworkOut,
    PatientReferralsOut,
    PlanOut,
    PractitionerPatientsOut,
    PractitionerReferralsOut,
    ProposalsOut,
    ProposalsQuery,
    ReadingsOut,
    ReadingsQuery,
    RemindersOut,
    RemindersQuery,
    SessionBody,
    SessionEndOut,
    SessionOut,
    UnreadableOut,
)
from health.web.network import NetworkView
from health.web.openapi import openapi_document
from health.web.readings import (
    MAX_WINDOW_MS,
    decrypt,
    may_read_some,
    reading_out,
    reading_records,
    summary,
)
from health.web.routing import Call, Reply, RouteSpec, extension_route
from health.web.session import COOKIE_NAME, OpenKeystore, Session, SessionLimits, SessionStore
from node.api.client import ApiError
from node.api.http import Request, Response
from node.runtime.extension import ExtensionRoute, NodeServices, StateReader

T = TypeVar("T")
EXTENSION_NAME: Final = "health-web"
ID_PARAM: Final = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
"""The JSON schema of an id in a path (32 bytes in hex)."""


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class WebConfig:
    """How a node serves the health API: where the keystores are, its own API's URL, the
    bounds, and the clocks (tests pass virtual ones)."""

    keystores: Path
    node_url: str
    sessions: SessionLimits = field(default_factory=SessionLimits)
    transport: HttpTransport | None = None
    clock_ms: Callable[[], int] = _wall_clock_ms
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng_bytes: Callable[[int], bytes] = os.urandom
    request_timeout_s: float = 5.0
    receipt_timeout_s: float = 7.0
    poll_interval_s: float = 0.2
    read_budget_s: float = 5.0
    max_worker_threads: int = 4
    network_window: int = 20
    secure_cookie: bool = False
    """Mark the session cookie ``Secure`` (when the API is served behind TLS)."""

    def __post_init__(self) -> None:
        if min(self.request_timeout_s, self.receipt_timeout_s, self.read_budget_s) <= 0:
            raise ValueError("WebConfig timeouts must be > 0")
        if self.max_worker_threads < 1:
            raise ValueError("WebConfig.max_worker_threads must be >= 1")


def _path_id(call: Call, name: str = "id") -> bytes:
    text = call.params[name]
    if len(text) != 64:
        raise WebError("malformed", f"{name} is 32 bytes as 64 hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise WebError("malformed", f"{name} is 32 bytes as 64 hex digits") from None


class HealthWeb:
    """The health API (see the module docstring); a ``NodeExtension``."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.sessions = SessionStore(
            config.keystores,
            config.sessions,
            monotonic=config.monotonic,
            rng_bytes=config.rng_bytes,
        )
        self.services: NodeServices | None = None
        self._threads = trio.CapacityLimiter(config.max_worker_threads)
        node = NodeClient(
            config.node_url, timeout_s=config.request_timeout_s, transport=config.transport
        )
        self._network = NetworkView(node, config.network_window)
        self._openapi: bytes | None = None

    @property
    def name(self) -> str:
        """``health-web``."""
        return EXTENSION_NAME

    def routes(self) -> Sequence[ExtensionRoute]:
        """``GET /openapi.json`` and every route of ``specs()``."""
        routes = [ExtensionRoute("GET", "/openapi\\.json", self._serve_openapi)]
        return routes + [extension_route(spec) for spec in self.specs()]

    async def run(
        self, services: NodeServices, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Keep the node's services, then wait to be cancelled (the routes do the work)."""
        self.services = services
        task_status.started()
        await trio.sleep_forever()

    async def _serve_openapi(self, request: Request, match: Any) -> Response:
        if self._openapi is None:
            self._openapi = openapi_document(self.specs(), sorted(ACTIONS))
        return Response(200, self._openapi)

    # -- plumbing ---------------------------------------------------------------------------

    async def _read(self, read: Callable[[StateReader], T]) -> T:
        if self.services is None:
            raise WebError("busy", "the node is starting", retry_after_s=1)
        return await self.services.query(read)

    def _client_of(self, opened: OpenKeystore) -> HealthClient:
        if isinstance(opened.client, HealthClient):
            return opened.client
        assert self.services is not None
        config, chain_id = self.config, self.services.chain_id
        client = HealthClient(
            config.node_url,
            opened.keystore,
            chain_id,
            timeout_s=config.request_timeout_s,
            transport=config.transport,
            clock_ms=config.clock_ms,
            monotonic=config.monotonic,
            sleep=config.sleep,
        )
        client.tx = KeepingSender(
            client.node,
            lambda: opened.keystore.signer,
            chain_id,
            receipt_timeout_s=config.receipt_timeout_s,
            poll_interval_s=config.poll_interval_s,
            monotonic=config.monotonic,
            sleep=config.sleep,
        )
        opened.client = client
        return client

    async def _with_client(self, session: Session, work: Callable[[HealthClient], T]) -> T:
        """``work(client)`` in a worker thread, holding the keystore's lock."""
        if self.services is None:
            raise WebError("busy", "the node is starting", retry_after_s=1)
        async with session.opened.lock:
            client = self._client_of(session.opened)
            return await trio.to_thread.run_sync(work, client, limiter=self._threads)

    def _window(self, query: ReadingsQuery, default_ms: int) -> tuple[int, int]:
        now = self.config.clock_ms()
        to_ms = now if query.to_ms is None else query.to_ms
        from_ms = max(0, to_ms - default_ms) if query.from_ms is None else query.from_ms
        if from_ms > to_ms:
            raise WebError("malformed", "from_ms is after to_ms")
        if to_ms - from_ms > MAX_WINDOW_MS:
            raise WebError("malformed", f"a window is at most {MAX_WINDOW_MS // DAY_MS} days")
        return from_ms, to_ms

    # -- the route table --------------------------------------------------------------------

    def specs(self) -> list[RouteSpec]:
        """Every route of the health API (see the module docstring)."""
        return [*self._read_specs(), *self._session_specs(), *self._action_specs()]

    def _read_specs(self) -> list[RouteSpec]:
        ids = {"id": ID_PARAM}

        def spec(
            path: str, handler: Any, response: Any, summary: str, tag: str, **kw: Any
        ) -> RouteSpec:
            params = ids if "{id}" in path else {}
            return RouteSpec("GET", path, handler, response, summary, tag, params=params, **kw)

        return [
            spec(
                "/health/identities/{id}", self._identity, IdentityOut, "An identity", "identities"
            ),
            spec(
                "/health/institutions",
                self._institutions,
                InstitutionsOut,
                "Member institutions with their labels",
                "identities",
            ),
            spec(
                "/health/identities/{id}/children",
                self._children,
                ChildrenOut,
                "Identities an institution registered or a patient paired",
                "identities",
                query=ListQuery,
            ),
            spec(
                "/health/patients/{id}/grants",
                self._grants,
                GrantsOut,
                "A patient's grants and emergency accesses",
                "consent",
                query=ListQuery,
            ),
            spec(
                "/health/practitioners/{id}/patients",
                self._patients,
                PractitionerPatientsOut,
                "Patients whose grants to a practitioner are in force",
                "consent",
                query=ListQuery,
            ),
            spec(
                "/health/patients/{id}/plan", self._plan, PlanOut, "A patient's care plan", "care"
            ),
            spec(
                "/health/patients/{id}/reminders",
                self._reminders,
                RemindersOut,
                "A patient's reminders from a time, for 7 days",
                "care",
                query=RemindersQuery,
            ),
            spec(
                "/health/patients/{id}/adherence",
                self._adherence,
                AdherenceOut,
                "Adherence per item of the current plan",
                "care",
            ),
            spec(
                "/health/practitioners/{id}/referrals",
                self._practitioner_referrals,
                PractitionerReferralsOut,
                "Referrals in and out",
                "referrals",
                query=ListQuery,
            ),
            spec(
                "/health/patients/{id}/referrals",
                self._patient_referrals,
                PatientReferralsOut,
                "A patient's referrals",
                "referrals",
                query=ListQuery,
            ),
            spec(
                "/health/dao",
                self._dao,
                DaoOut,
                "Members, validators and power, parameters",
                "governance",
            ),
            spec(
                "/health/dao/proposals",
                self._proposals,
                ProposalsOut,
                "Proposals by status, newest first",
                "governance",
                query=ProposalsQuery,
            ),
            spec(
                "/health/patients/{id}/audit",
                self._audit,
                AuditOut,
                "Who read which of a patient's records",
                "audit",
                query=ListQuery,
            ),
            spec(
                "/health/network",
                self._network_figures,
                NetworkOut,
                "Validators, height, peers, block interval, throughput",
                "network",
            ),
        ]

    def _session_specs(self) -> list[RouteSpec]:
        ids = {"id": ID_PARAM}
        return [
            RouteSpec(
                "POST",
                "/health/session",
                self._unlock,
                SessionOut,
                "Unlock a keystore of this node: a session",
                "session",
                body=SessionBody,
                status=201,
                errors=(401, 403, 429),
            ),
            RouteSpec(
                "DELETE", "/health/session", self._end, SessionEndOut, "End the session", "session"
            ),
            RouteSpec(
                "GET",
                "/health/me",
                self._me,
                MeOut,
                "The session's keystore and identity",
                "session",
                session=True,
            ),
            RouteSpec(
                "GET",
                "/health/patients/{id}/readings",
                self._readings,
                ReadingsOut,
                "Decrypted glucose readings the session may read",
                "readings",
                query=ReadingsQuery,
                session=True,
                errors=(403,),
                params=ids,
            ),
            RouteSpec(
                "GET",
                "/health/patients/{id}/glucose-stats",
                self._glucose_stats,
                GlucoseStatsOut,
                "Time in range, metrics and alerts of the readings",
                "readings",
                query=ReadingsQuery,
                session=True,
                errors=(403,),
                params=ids,
            ),
        ]

    def _action_specs(self) -> list[RouteSpec]:
        specs = []
        for name, action in sorted(ACTIONS.items()):

            async def handler(call: Call, name: str = name) -> Reply:
                return await self._act(name, call)

            specs.append(
                RouteSpec(
                    "POST",
                    f"/health/actions/{name}",
                    handler,
                    ActionOut,
                    action.summary,
                    "actions",
                    body=action.body,
                    session=True,
                    errors=(409,),
                )
            )
        return specs

    # -- reads ------------------------------------------------------------------------------

    async def _identity(self, call: Call) -> Reply:
        identity = _path_id(call)
        return Reply(await self._read(lambda r: reads.identity_out(r, identity)))

    async def _institutions(self, call: Call) -> Reply:
        return Reply(await self._read(reads.institutions))

    async def _children(self, call: Call) -> Reply:
        parent, limit = _path_id(call), call.query.limit
        return Reply(await self._read(lambda r: reads.children(r, parent, limit)))

    async def _grants(self, call: Call) -> Reply:
        patient, limit = _path_id(call), call.query.limit
        return Reply(await self._read(lambda r: reads.grants(r, patient, limit)))

    async def _patients(self, call: Call) -> Reply:
        who, limit, now = _path_id(call), call.query.limit, self.config.clock_ms()
        return Reply(await self._read(lambda r: reads.consented_patients(r, who, limit, now)))

    async def _plan(self, call: Call) -> Reply:
        patient = _path_id(call)
        return Reply(await self._read(lambda r: reads.plan(r, patient)))

    async def _reminders(self, call: Call) -> Reply:
        patient, query = _path_id(call), call.query
        start = self.config.clock_ms() - DAY_MS if query.from_ms is None else query.from_ms
        from_ms = max(0, start)
        return Reply(await self._read(lambda r: reads.reminders(r, patient, from_ms, query.limit)))

    async def _adherence(self, call: Call) -> Reply:
        patient = _path_id(call)
        return Reply(await self._read(lambda r: reads.adherence(r, patient)))

    async def _practitioner_referrals(self, call: Call) -> Reply:
        who, limit = _path_id(call), call.query.limit
        return Reply(await self._read(lambda r: reads.practitioner_referrals(r, who, limit)))

    async def _patient_referrals(self, call: Call) -> Reply:
        patient, limit = _path_id(call), call.query.limit
        return Reply(await self._read(lambda r: reads.patient_referrals(r, patient, limit)))

    async def _dao(self, call: Call) -> Reply:
        return Reply(await self._read(reads.dao))

    async def _proposals(self, call: Call) -> Reply:
        status, limit = call.query.status, call.query.limit
        return Reply(await self._read(lambda r: reads.proposals(r, status, limit)))

    async def _audit(self, call: Call) -> Reply:
        patient, limit = _path_id(call), call.query.limit
        return Reply(await self._read(lambda r: reads.audit_log(r, patient, limit)))

    async def _network_figures(self, call: Call) -> Reply:
        validators = await self._read(reads.validators)
        try:
            figures = await trio.to_thread.run_sync(self._network.read, limiter=self._threads)
            status = figures.status
            document = NetworkOut(
                chain_id=status["chain_id"],
                moniker=status["moniker"],
                height=status["height"],
                last_block_time_ms=status["last_block_time_ms"],
                catching_up=status["catching_up"],
                peers=status["peer_ids"],
                mempool_txs=status["mempool"]["txs"],
                validators=validators,
                total_power=sum(v.power for v in validators),
                window_blocks=figures.window_blocks,
                block_interval_ms=figures.block_interval_ms,
                throughput_tx_per_s=figures.throughput_tx_per_s,
            )
        except (ApiError, KeyError, TypeError, ValidationError) as exc:
            raise WebError("busy", f"this node's status cannot be read: {exc}") from None
        return Reply(document)

    # -- sessions ---------------------------------------------------------------------------

    def _cookie(self, token: str, max_age_s: int) -> tuple[str, str]:
        secure = "; Secure" if self.config.secure_cookie else ""
        value = f"{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}"
        return ("set-cookie", value + secure)

    async def _unlock(self, call: Call) -> Reply:
        body: SessionBody = call.body
        token, session = await self.sessions.unlock(body.keystore, body.passphrase, call.client)
        keystore = session.keystore
        ttl = self.sessions.expires_in_s(session)
        document = SessionOut(
            token=token,
            token_type="bearer",
            expires_in_s=ttl,
            keystore=body.keystore,
            name=keystore.name,
            role=keystore.role.name.lower(),  # type: ignore[arg-type]
            id=keystore.identity_id.hex(),
        )
        return Reply(document, 201, (self._cookie(token, ttl), ("cache-control", "no-store")))

    async def _end(self, call: Call) -> Reply:
        ended = self.sessions.end(call.token)
        return Reply(SessionEndOut(ended=ended), headers=(self._cookie("", 0),))

    async def _me(self, call: Call) -> Reply:
        session = self.sessions.get(call.token)
        keystore = session.keystore
        identity_id = keystore.identity_id
        found = await self._read(lambda r: reads.identity_or_none(r, identity_id))
        return Reply(
            MeOut(
                id=identity_id.hex(),
                keystore=session.opened.name,
                name=keystore.name,
                role=keystore.role.name.lower(),  # type: ignore[arg-type]
                identity=found,
                expires_in_s=self.sessions.expires_in_s(session),
            )
        )

    # -- readings ---------------------------------------------------------------------------

    async def _decrypted(self, call: Call, default_ms: int) -> tuple[Any, tuple[int, int], bool]:
        session = self.sessions.get(call.token)
        patient, query = _path_id(call), call.query
        window = self._window(query, default_ms)
        requester, now = session.keystore.identity_id, self.config.clock_ms()

        def read(reader: StateReader) -> tuple[Any, bool]:
            reads.identity_out(reader, patient)
            if not may_read_some(reader, patient, requester, now):
                raise WebError("forbidden", "no grant in force lets this session read them")
            return reading_records(
                reader, patient, requester, window, limit=query.limit, now_ms=now
            )

        candidates, truncated = await self._read(read)
        cache = session.opened.readings
        config = self.config
        decrypted = await self._with_client(
            session,
            lambda client: decrypt(
                client,
                candidates,
                cache,
                monotonic=config.monotonic,
                budget_s=config.read_budget_s,
            ),
        )
        return decrypted, window, truncated

    async def _readings(self, call: Call) -> Reply:
        decrypted, window, truncated = await self._decrypted(call, DAY_MS)
        return Reply(
            ReadingsOut(
                patient=call.params["id"].lower(),
                from_ms=window[0],
                to_ms=window[1],
                readings=[reading_out(reading) for reading in decrypted.readings],
                unreadable=[
                    UnreadableOut(record=record.hex(), reason=reason)
                    for record, reason in decrypted.unreadable
                ],
                truncated=truncated or decrypted.out_of_time,
            )
        )

    async def _glucose_stats(self, call: Call) -> Reply:
        decrypted, window, truncated = await self._decrypted(call, 14 * DAY_MS)
        return Reply(summary(_path_id(call), window, decrypted, truncated))

    # -- actions ----------------------------------------------------------------------------

    async def _act(self, name: str, call: Call) -> Reply:
        session = self.sessions.get(call.token)
        identity, now = session.keystore.identity_id, self.config.clock_ms()
        peer = "" if self.services is None else self.services.local_peer
        body = call.body
        share = name == "grant" and body.share_records

        def prepare(reader: StateReader) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
            covered = covered_records(reader, identity, body, now) if share else ()
            return local_custodians(reader, peer), covered

        custodians, covered = await self._read(prepare)
        context = ActionContext(self.config.node_url, custodians, covered, now)
        result, receipt, height = await self._with_client(
            session, lambda client: run_action(client, name, body, context)
        )
        return Reply(action_out(name, result, receipt, height))
