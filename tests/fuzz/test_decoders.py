"""Fuzzing every decoder (``tests.fuzz.targets``): whatever the bytes, a decoder returns a
value or raises its module's typed error, never anything else. The corpus is replayed on
every run; the default run tries a few dozen inputs per target, the ``slow`` deep run
thousands."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.campaign import run_fuzz_campaign
from tests.fuzz.corpus import corpus_inputs
from tests.fuzz.targets import Target, all_targets, check

DEFAULT_EXAMPLES = 20
DEEP_EXAMPLES = 2_000
TARGETS = all_targets()
CORPUS = list(corpus_inputs())


def _run(target: Target, examples: int) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=target.inputs)
    def fuzz(data: bytes) -> None:
        check(target, data)

    fuzz()


def test_every_corpus_belongs_to_a_target() -> None:
    """A target added since the corpus was written is fuzzed all the same (its seeds come
    with the next ``python -m tests.fuzz.make_corpus``); a corpus without a target is stale."""
    stale = {name for name, _ in CORPUS} - set(TARGETS)
    assert not stale, ("remove the corpus of targets that are gone", sorted(stale))


def test_the_corpus_replays_without_an_untyped_error() -> None:
    assert len(CORPUS) >= 200
    for name, path in CORPUS:
        check(TARGETS[name], path.read_bytes())


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz(name: str) -> None:
    _run(TARGETS[name], DEFAULT_EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_deep(name: str) -> None:
    _run(TARGETS[name], DEEP_EXAMPLES)


def test_a_campaign_counts_what_it_tried() -> None:
    report = run_fuzz_campaign(examples=1)
    assert report.failures == []
    assert report.targets == len(TARGETS) and report.corpus_inputs == len(CORPUS)
    assert report.generated_inputs >= len(TARGETS)
