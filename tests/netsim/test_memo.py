"""The shared signature memo: same answers, bounded, and scoped to a run."""

from __future__ import annotations

import pytest

from crypto_core import signatures
from netsim.memo import SharedVerification, SignatureMemo
from node.testing.factories import key_pair

KEY = key_pair("memo")


def test_the_memo_gives_the_same_answers_and_counts_hits() -> None:
    memo = SignatureMemo(signatures.verify)
    good = KEY.sign(b"message")
    bad = bytes(64)
    assert memo(KEY.public_key, b"message", good) is True
    assert memo(KEY.public_key, b"message", bad) is False
    assert memo(KEY.public_key, b"message", good) is True
    assert memo(KEY.public_key, b"other", good) is False
    assert (memo.misses, memo.hits) == (3, 1)


def test_the_memo_forgets_the_oldest_answer_past_its_capacity() -> None:
    calls: list[bytes] = []

    def counting(public_key: bytes, message: bytes, signature: bytes) -> bool:
        calls.append(message)
        return True

    memo = SignatureMemo(counting, capacity=2)
    for message in (b"a", b"b", b"c", b"a"):
        memo(b"k", message, b"s")
    assert calls == [b"a", b"b", b"c", b"a"]  # "a" was forgotten when "c" came


def test_wrong_types_reach_the_real_function_and_its_errors() -> None:
    memo = SignatureMemo(signatures.verify)
    with pytest.raises(TypeError):
        memo("key", b"m", b"s")  # type: ignore[arg-type]


def test_sharing_is_scoped_to_the_context() -> None:
    signature = KEY.sign(b"vote")
    with SharedVerification() as memo:
        assert signatures.verify(KEY.public_key, b"vote", signature)
        assert signatures.verify(KEY.public_key, b"vote", signature)
        assert (memo.misses, memo.hits) == (1, 1)
        with pytest.raises(RuntimeError, match="already shared"), SharedVerification():
            pass
    assert signatures.verify(KEY.public_key, b"vote", signature)
    assert (memo.misses, memo.hits) == (1, 1)  # no longer consulted
