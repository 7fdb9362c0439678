"""Every bound of the consensus core in one place, with its unit in its name.

Nothing in the core grows without one of these limits. Changing a value here changes memory
use and what the core accepts, never the encoding of signed messages (except ``MAX_*`` ranges,
which only make more messages malformed).
"""

from __future__ import annotations

# --- ranges of message fields (values outside are malformed) -------------------------------

MAX_CHAIN_ID_BYTES = 64
"""Longest chain id, in UTF-8 bytes (it is length-prefixed in the sign-bytes)."""

MAX_HEIGHT = 2**63 - 1
"""Largest height (heights are unsigned 64-bit in the sign-bytes; they start at 1)."""

MAX_ROUND = 2**31 - 1
"""Largest round (rounds are 32-bit in the sign-bytes, as in CometBFT)."""

VALUE_ID_BYTES = 32
"""Size of a value id: the SHA-256 id of a block."""

# --- validator sets --------------------------------------------------------------------------

MAX_VALIDATORS = 10_000
"""Most validators in one set."""

MAX_TOTAL_VOTING_POWER = 2**60
"""Largest total voting power of a set (keeps proposer priorities within 64 bits)."""

PROPOSER_CACHE_ROUNDS = 1_024
"""Latest rounds per validator set whose proposer is remembered after being computed."""

MAX_UPDATE_DELAY_HEIGHTS = 16
"""Largest delay, in heights, between deciding a validator-set update and applying it."""

# --- per-height state of the core ------------------------------------------------------------

PAST_ROUNDS_KEPT = 16
"""Rounds below the current one whose votes and proposals are still kept (besides the locked
round, the valid round and the latest rounds holding a precommit quorum, which are kept)."""

MAX_CITED_ROUNDS = 4
"""Rounds older than ``PAST_ROUNDS_KEPT`` whose votes are still admitted because a kept
proposal of the current or a later round names them as its valid round: the paper's L28
needs that round's polka, which a node partitioned for many rounds never saw. Nearest
citing round first; as many as the proposals one round keeps (``MAX_PROPOSALS_PER_ROUND``),
so even an equivocating proposer's round has every cited round admitted."""

MAX_PROTECTED_QUORUM_ROUNDS = 4
"""Latest rounds with a precommit quorum whose votes are kept however old (the paper's L49 may
still decide them when their proposal arrives)."""

MAX_POLKA_HISTORY_ROUNDS = 64
"""Dropped rounds whose polka (value with +2/3 prevotes) is still remembered, for the paper's
L28 (a re-proposal cites the round of its polka); the oldest is forgotten first."""

MAX_FUTURE_ROUNDS_PER_VALIDATOR = 2
"""Rounds above ``current round + 1`` that each validator may open by voting in them; more
would let one Byzantine validator make the core track unboundedly many rounds."""

PROPOSAL_LOOKAHEAD_ROUNDS = 16
"""Proposals for rounds more than this many rounds ahead of the current one are dropped (the
proposer of a far round costs O(validators x rounds) to compute; gossip re-sends proposals)."""

MAX_VALUES_PER_VALIDATOR_STEP = 4
"""Distinct values (nil included) one validator's votes count for in one (round, vote type).
Honest validators vote once; an equivocator's conflicting votes still count for their value,
as in the paper (a correct process may need them to see a polka others saw), up to this."""

MAX_PROPOSALS_PER_ROUND = 4
"""Distinct proposals kept per round (only an equivocating proposer sends more than one)."""

MAX_VALUE_VERDICTS = 256
"""Validity verdicts (value id -> valid) kept per height; the oldest unpinned one goes first."""

# --- buffers between heights and evidence ------------------------------------------------------

FUTURE_HEIGHTS_BUFFERED = 1
"""Messages for heights up to ``current height + this`` are buffered; higher ones dropped."""

MAX_BUFFERED_FUTURE_INPUTS = 2_048
"""Most inputs buffered for future heights, in messages."""

MAX_BUFFERED_FUTURE_INPUTS_PER_SENDER = 32
"""Most inputs buffered for future heights per signer (the local shell counts as one signer)."""

MAX_PENDING_EVIDENCE = 1_024
"""Most duplicate-vote evidence objects kept until a block includes them."""

MAX_EVIDENCE_PER_VALIDATOR = 4
"""Most pending evidence objects per validator (one is enough to prove its misbehaviour)."""
