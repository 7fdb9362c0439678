"""Typed errors of the consensus core.

Two kinds, as in sans-I/O protocol libraries: :class:`InvalidMessageError` means a *peer* broke
the protocol (the message is rejected, the core's state is unchanged, and the shell may score
the peer down); :class:`UsageError` means the *caller* broke the core's contract (a bug in the
shell). Configuration and validator-set construction problems raise
:class:`InvalidConfigError` and :class:`InvalidValidatorSetError`.

Every error is raised before any state changes, so a rejected input leaves the core exactly as
it was (which is also what makes replaying a log that contains rejected inputs deterministic).
"""

from __future__ import annotations


class ConsensusError(Exception):
    """Base class of every error raised by the consensus package."""


class InvalidMessageError(ConsensusError):
    """A message from the network breaks the protocol; reject it (and maybe its sender)."""


class MalformedMessageError(InvalidMessageError):
    """A field has the wrong type, size or range (e.g. a 31-byte value id, a negative round)."""


class WrongChainError(InvalidMessageError):
    """The message was signed for another chain id."""


class UnknownValidatorError(InvalidMessageError):
    """The signer is not in the validator set of the message's height."""


class NotProposerError(InvalidMessageError):
    """A proposal was signed by a validator that is not the proposer of its (height, round)."""


class InvalidSignatureError(InvalidMessageError):
    """An Ed25519 signature does not verify against the signer's public key."""


class InvalidCertificateError(InvalidMessageError):
    """A commit certificate is malformed, has bad signatures or lacks a +2/3 quorum."""


class InvalidEvidenceError(InvalidMessageError):
    """A duplicate-vote evidence object does not prove an equivocation."""


class UsageError(ConsensusError):
    """The caller broke the core's contract (wrong input order, conflicting verdicts, ...)."""


class InvalidConfigError(ConsensusError, ValueError):
    """A configuration value (e.g. a timeout) is out of range."""


class InvalidValidatorSetError(ConsensusError, ValueError):
    """A validator set or a validator-set update is invalid (empty, duplicates, bad power)."""
