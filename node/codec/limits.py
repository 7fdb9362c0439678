"""Size limits and name patterns of the chain's encodings (bytes unless the name says
otherwise). Every decoder checks its input against these before parsing."""

from __future__ import annotations

import re
from typing import Final

from consensus.limits import MAX_CHAIN_ID_BYTES
from consensus.limits import MAX_VALIDATORS as CONSENSUS_MAX_VALIDATORS

U64_MAX: Final = (1 << 64) - 1
U32_MAX: Final = (1 << 32) - 1
KIB: Final = 1024
MIB: Final = 1024 * KIB

MAX_TX_BYTES: Final = 64 * KIB
MAX_BLOCK_BYTES: Final = 4 * MIB
MAX_TXS_PER_BLOCK: Final = 20_000
MAX_TX_PRIORITY: Final = 65_535
MAX_CHAIN_ID_CHARS: Final = MAX_CHAIN_ID_BYTES  # chain ids are ASCII: chars = bytes
MAX_VALIDATORS: Final = CONSENSUS_MAX_VALIDATORS
MAX_VOTE_BYTES: Final = 1 * KIB
# One evidence object: two votes inside a one-byte array header.
MAX_EVIDENCE_BYTES: Final = 2 * MAX_VOTE_BYTES + 1
# The most evidence objects any block may carry (ConsensusParams sets a chain's own limit).
MAX_EVIDENCE_PER_BLOCK: Final = 256
# One commit signature: array header (1) + bin8 key (2 + 32) + bin8 signature (2 + 64).
COMMIT_SIGNATURE_BYTES: Final = 101
MAX_CERTIFICATE_BYTES: Final = MAX_VALIDATORS * COMMIT_SIGNATURE_BYTES + 256
MAX_HEADER_BYTES: Final = MAX_CERTIFICATE_BYTES + 1 * KIB
MAX_TX_BATCH_BYTES: Final = 512 * KIB
MAX_TXS_PER_BATCH: Final = 1024
MAX_EVENTS_PER_TX: Final = 32
MAX_EVENT_ATTRIBUTES: Final = 16
MAX_ATTRIBUTE_VALUE_CHARS: Final = 256
MAX_LOG_CHARS: Final = 256
MAX_RECEIPT_BYTES: Final = 256 * KIB
MAX_STATE_KEY_BYTES: Final = 256
MAX_STATE_VALUE_BYTES: Final = 64 * KIB
MAX_PROOF_PATH_HASHES: Final = 64
MAX_STATE_PROOF_BYTES: Final = 256 * KIB
# A compact block: the header, a 32-byte hash (34 encoded) per transaction, the evidence.
MAX_COMPACT_BLOCK_BYTES: Final = (
    MAX_HEADER_BYTES + 34 * MAX_TXS_PER_BLOCK + MAX_EVIDENCE_PER_BLOCK * MAX_EVIDENCE_BYTES + 16
)
# A request for transactions of a block: its id and up to MAX_TXS_PER_BLOCK uint indexes.
MAX_BLOCK_TXS_REQUEST_BYTES: Final = 64 + 3 * MAX_TXS_PER_BLOCK
# A tag and an array header around the body of a network message.
ENVELOPE_OVERHEAD_BYTES: Final = 16
MAX_MESSAGE_BYTES: Final = MAX_BLOCK_BYTES + MAX_CERTIFICATE_BYTES + ENVELOPE_OVERHEAD_BYTES
# msgpack bin header of a byte string of up to 4 GiB: 1 type byte + up to 4 length bytes.
BIN_HEADER_MAX_BYTES: Final = 5

TX_SIGN_DOMAIN: Final = b"bighealth/tx/v1\x00"

CHAIN_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
KIND_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,31}\.[a-z][a-z0-9_]{0,31}", re.ASCII)
EVENT_NAME_PATTERN: Final = KIND_PATTERN
ATTRIBUTE_KEY_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,31}", re.ASCII)
