"""``StopScanner``: the cases that shaped it (the fuzz test in test_llama covers the rest)."""

from __future__ import annotations

from inference.stops import StopScanner


def test_overlapping_stops_wait_for_the_earlier_starting_one() -> None:
    scanner = StopScanner(("a", ".aa"))
    assert scanner.feed(".a") == ""  # 'a' completed, but '.aa' (starting earlier) may too
    assert not scanner.stopped
    assert scanner.feed("a") == ""
    assert scanner.stopped


def test_a_held_back_prefix_that_does_not_complete_is_released() -> None:
    scanner = StopScanner(("###",))
    assert scanner.feed("ab#") == "ab"
    assert scanner.feed("#c") == "##c"
    assert not scanner.stopped


def test_a_stop_completed_by_the_last_piece_is_cut_at_finish() -> None:
    scanner = StopScanner(("a", ".aa"))
    assert scanner.feed("x.a") == "x"
    assert scanner.finish() == "."  # generation ended: '.aa' can no longer complete, 'a' did
    assert scanner.stopped


def test_no_stops_passes_everything_through() -> None:
    scanner = StopScanner(())
    assert scanner.feed("hello") == "hello"
    assert scanner.finish(" world") == " world"
    assert not scanner.stopped
