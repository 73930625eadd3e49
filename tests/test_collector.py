"""The garbage collector's settings during bulk work (services/collector.py)."""

from __future__ import annotations

import gc
import threading

import pytest

from crmcore.services import collector


@pytest.fixture(autouse=True)
def _default_collector():
    before = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_bulk_work_freezes_and_spaces_passes_then_gives_everything_back():
    with collector.bulk_work():
        assert gc.get_threshold() == (collector.THRESHOLD, 10, 10)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_a_failure_inside_restores_the_settings():
    with pytest.raises(RuntimeError), collector.bulk_work():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0


def test_overlapping_work_in_two_threads_restores_when_the_last_one_ends():
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, tuple[int, int, int]] = {}

    def first() -> None:
        with collector.bulk_work():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with collector.bulk_work():
            second_in.set()
            first_out.wait(5)
            # The first one ended: the setting is still the bulk one, not the one it found.
            seen["after first"] = gc.get_threshold()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen["after first"] == (collector.THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0


def test_a_stream_closed_early_restores_the_settings():
    stream = collector.bulk_iteration(iter(range(10)))
    assert next(stream) == 0
    assert gc.get_threshold()[0] == collector.THRESHOLD
    stream.close()
    assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0
    assert list(collector.bulk_iteration(iter("ab"))) == ["a", "b"]
    assert gc.get_threshold() == (700, 10, 10)


def test_cycles_made_during_bulk_work_are_still_collected():
    collected = threading.Event()

    class Node:
        def __init__(self) -> None:
            self.other = self

        def __del__(self) -> None:
            collected.set()

    with collector.bulk_work():
        Node()
        gc.collect()
        assert collected.is_set()
