"""The node's garbage-collector set-up (``node.runtime.launch.tune_garbage_collector``)."""

from __future__ import annotations

import gc

from node.runtime.launch import GC_YOUNG_THRESHOLD, tune_garbage_collector


def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    threshold = gc.get_threshold()
    try:
        tune_garbage_collector()
        assert gc.get_freeze_count() > 0  # what was loaded is left out of the scans
        young, middle, oldest = gc.get_threshold()
        assert young == GC_YOUNG_THRESHOLD > threshold[0]
        assert (middle, oldest) == threshold[1:]
        cycle: list[object] = []
        cycle.append(cycle)  # a cycle made afterwards is still collected
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
