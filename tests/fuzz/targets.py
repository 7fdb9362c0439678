"""Every decoder and byte entry point the fuzz tests drive, as ``Target`` s.

A target turns one ``bytes`` input into a value or raises one of its ``errors`` (the
module's typed errors); any other exception is a bug in the decoder. ``inputs`` is the
hypothesis strategy that feeds it: random bytes plus, where the input has a structure,
valid encodings and mutations of them (``tests.fuzz.strategies``).

Targets: every ``StructCodec`` defined at module level anywhere in ``node`` and ``health``
(found by walking the packages: chain types, contract payloads and state, vault records,
hello, sync request, ...), the network envelope, committed blocks, inbound gossip per topic,
the write-ahead-log records, the sync response, frames, the wire payloads (direct, response,
gossip), the records protocol's requests and answers, and sealed records and wrapped keys.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from hypothesis import strategies as st
from nacl.public import PrivateKey

import health
import node
from crypto_core.signatures import sha256
from health import envelopes, records_wire
from health.records_wire import RecordsError
from node.adapters import framing, handshake, wire
from node.adapters.errors import (
    FrameTooLargeError,
    HandshakeError,
    MalformedFrameError,
    MalformedMessageError,
)
from node.chain import messages, wal
from node.chain.errors import InvalidGenesisError, StorageMismatchError
from node.chain.genesis import GENESIS_CODEC, Genesis
from node.codec import (
    COMMITTED_BLOCK_CODEC,
    MAX_BLOCK_BYTES,
    decode_committed_block,
    decode_message,
)
from node.codec.envelope import _MESSAGE_CODECS
from node.codec.schema import StructCodec
from node.errors import DecodeError
from node.runtime import sync_wire
from tests.fuzz.strategies import (
    codec_encodings,
    codec_wire_values,
    fuzz_inputs,
    mutated_bytes,
)

_SKIPPED_PACKAGES: Final = ("libp2p", ".cli", ".demo", "__main__")
"""Subpackages walked past: they define no codec, and importing them is slow."""


@dataclass(frozen=True)
class Target:
    """One decoder: ``decode(data)`` returns a value or raises one of ``errors``."""

    name: str
    decode: Callable[[bytes], object]
    errors: tuple[type[BaseException], ...]
    inputs: st.SearchStrategy[bytes]


def check(target: Target, data: bytes) -> None:
    """``target`` decodes ``data`` or refuses it with one of its typed errors; any other
    exception propagates (a crash)."""
    with contextlib.suppress(*target.errors):
        target.decode(data)


def _walk_codecs() -> Iterator[StructCodec[Any]]:
    for package in (node, health):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if any(part in info.name for part in _SKIPPED_PACKAGES):
                continue
            module = importlib.import_module(info.name)
            for value in vars(module).values():
                if isinstance(value, StructCodec):
                    yield value


def struct_codecs() -> dict[str, StructCodec[Any]]:
    """Every module-level ``StructCodec`` of ``node`` and ``health``, by target name
    (``struct.<module of the type>.<type>``)."""
    found: dict[str, StructCodec[Any]] = {}
    for codec in _walk_codecs():
        found.setdefault(f"struct.{codec.cls.__module__}.{codec.cls.__qualname__}", codec)
    return dict(sorted(found.items()))


def _tagged(codecs: dict[Any, StructCodec[Any]]) -> st.SearchStrategy[list[Any]]:
    """``[tag, body]`` arrays with a valid body for the tag."""
    return st.sampled_from(sorted(codecs, key=int)).flatmap(
        lambda tag: codec_wire_values(codecs[tag]).map(lambda body: [int(tag), body])
    )


# -- decoders that are not one StructCodec -------------------------------------------------


def _frames(data: bytes) -> list[bytes]:
    """Every frame in ``data`` fed to a decoder in 7-byte chunks."""
    decoder = framing.FrameDecoder(64)
    frames: list[bytes] = []
    for start in range(0, len(data), 7):
        decoder.feed(data[start : start + 7])
        while (frame := decoder.next_frame()) is not None:
            frames.append(frame)
    return frames


_TOPICS: Final = (*messages.TOPICS, "unknown")


def _inbound(data: bytes) -> object:
    """The first byte picks the gossip topic (one not subscribed to included)."""
    if not data:
        return None
    return messages.decode_inbound(_TOPICS[data[0] % len(_TOPICS)], data[1:], MAX_BLOCK_BYTES)


_RECORD_ID: Final = sha256(b"fuzz/record")
_OWNER: Final = sha256(b"fuzz/owner")
_DATA_KEY: Final = sha256(b"fuzz/data-key")
_READER: Final = PrivateKey(sha256(b"fuzz/reader"))


def _open_sealed(data: bytes) -> bytes:
    return envelopes.open_sealed(
        data, record_id=_RECORD_ID, owner=_OWNER, key_epoch=0, data_key=_DATA_KEY
    )


def _unwrap(data: bytes) -> bytes:
    return envelopes.unwrap_key(data, _RECORD_ID, bytes(_READER))


def _sealed_seed() -> bytes:
    return envelopes.seal(
        b'{"resourceType": "Observation"}',
        record_id=_RECORD_ID,
        owner=_OWNER,
        key_epoch=0,
        data_key=_DATA_KEY,
        nonce=bytes(24),
    )


def _wrapped_seed() -> bytes:
    return envelopes.wrap_key(_DATA_KEY, _RECORD_ID, bytes(_READER.public_key))


def _near(seed: Callable[[], bytes]) -> st.SearchStrategy[bytes]:
    """A valid input and its byte-level mutations, and random bytes."""
    valid = st.just(b"").map(lambda _: seed())
    return st.one_of(st.binary(max_size=200), valid, valid.flatmap(mutated_bytes))


def _frame_inputs() -> st.SearchStrategy[bytes]:
    valid = st.lists(st.binary(max_size=80), max_size=4).map(
        lambda payloads: b"".join(framing.encode_uvarint(len(p)) + p for p in payloads)
    )
    return st.one_of(st.binary(max_size=200), valid, valid.flatmap(mutated_bytes))


def _gossip_inputs() -> st.SearchStrategy[bytes]:
    valid = st.builds(
        wire.encode_gossip,
        st.binary(min_size=8, max_size=8),
        st.integers(0, wire.MAX_SEQUENCE),
        st.binary(max_size=40),
    )
    return st.one_of(st.binary(max_size=100), valid, valid.flatmap(mutated_bytes))


def _direct_inputs() -> st.SearchStrategy[bytes]:
    valid = st.builds(wire.encode_direct, st.sampled_from(messages.TOPICS), st.binary(max_size=40))
    return st.one_of(st.binary(max_size=100), valid, valid.flatmap(mutated_bytes))


def _inbound_inputs() -> st.SearchStrategy[bytes]:
    message = _tagged(_MESSAGE_CODECS)
    return st.builds(
        lambda topic, body: bytes([topic]) + body,
        st.integers(0, len(_TOPICS) - 1),
        fuzz_inputs(message),
    )


def _answer_wire() -> st.SearchStrategy[list[Any]]:
    refusal = st.tuples(st.sampled_from(sorted(records_wire.REASONS)), st.text(max_size=300)).map(
        list
    )
    return st.one_of(
        st.tuples(st.just(True), st.binary(max_size=60)).map(list),
        st.tuples(st.just(False), refusal).map(list),
    )


def _request_wire() -> st.SearchStrategy[list[Any]]:
    codecs: list[StructCodec[Any]] = [
        records_wire.FETCH_REQUEST_CODEC,
        records_wire.STORE_REQUEST_CODEC,
    ]
    body = st.sampled_from(codecs)
    return st.tuples(
        st.sampled_from(sorted(records_wire.KINDS)),
        body.flatmap(codec_encodings),
    ).map(list)


def _special_targets() -> list[Target]:
    sync_response = sync_wire.response_codec(sync_wire.DEFAULT_MAX_RESPONSE_BYTES)
    records = (RecordsError,)
    message = _tagged(_MESSAGE_CODECS)
    return [
        Target("codec.message", decode_message, (DecodeError,), fuzz_inputs(message)),
        Target(
            "codec.committed_block",
            decode_committed_block,
            (DecodeError,),
            fuzz_inputs(codec_wire_values(COMMITTED_BLOCK_CODEC)),
        ),
        Target("chain.inbound", _inbound, (messages.PeerFault,), _inbound_inputs()),
        Target("chain.wal_record", wal.decode_record, (StorageMismatchError,),
               fuzz_inputs(_tagged(wal._CODECS))),
        Target("chain.genesis", Genesis.decode, (InvalidGenesisError,),
               fuzz_inputs(codec_wire_values(GENESIS_CODEC))),
        Target("sync.response", sync_response.decode, (DecodeError,),
               fuzz_inputs(codec_wire_values(sync_response))),
        Target("adapters.frames", _frames, (FrameTooLargeError, MalformedFrameError),
               _frame_inputs()),
        Target("adapters.direct", wire.decode_direct, (MalformedMessageError,),
               _direct_inputs()),
        Target("adapters.response", wire.decode_response, (MalformedMessageError,),
               st.binary(max_size=300)),
        Target("adapters.gossip", wire.decode_gossip, (MalformedMessageError,),
               _gossip_inputs()),
        Target("adapters.hello", handshake.decode_hello, (HandshakeError,),
               fuzz_inputs(codec_wire_values(handshake.HELLO_CODEC))),
        Target("records.request", records_wire.decode_request, records,
               fuzz_inputs(_request_wire())),
        Target("records.answer", records_wire.decode_answer, records,
               fuzz_inputs(_answer_wire())),
        Target("records.fetch_request", records_wire.decode_fetch_request, records,
               fuzz_inputs(codec_wire_values(records_wire.FETCH_REQUEST_CODEC))),
        Target("records.store_request", records_wire.decode_store_request, records,
               fuzz_inputs(codec_wire_values(records_wire.STORE_REQUEST_CODEC))),
        Target("records.fetch_response", records_wire.decode_fetch_response, records,
               fuzz_inputs(codec_wire_values(records_wire.FETCH_RESPONSE_CODEC))),
        Target("records.store_response", records_wire.decode_store_response, records,
               fuzz_inputs(codec_wire_values(records_wire.STORE_RESPONSE_CODEC))),
        Target("envelopes.open_sealed", _open_sealed, (envelopes.EnvelopeError,),
               _near(_sealed_seed)),
        Target("envelopes.unwrap_key", _unwrap, (envelopes.EnvelopeError,),
               _near(_wrapped_seed)),
    ]  # fmt: skip


@cache
def all_targets() -> dict[str, Target]:
    """Every target by name: the special decoders, then every ``StructCodec``."""
    targets = {target.name: target for target in _special_targets()}
    for name, codec in struct_codecs().items():
        targets[name] = Target(name, codec.decode, (DecodeError,), _codec_inputs(codec))
    return targets


def _codec_inputs(codec: StructCodec[Any]) -> st.SearchStrategy[bytes]:
    return fuzz_inputs(codec_wire_values(codec))
