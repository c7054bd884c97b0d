"""The "latest request wins" runner of lesson 06, driven by fake slow jobs that wait on events (no sleeps)."""
from __future__ import annotations

import threading

import pytest

from facestyle_utils.latest_wins import LatestWins, Superseded

TIMEOUT = 30  # seconds; only reached when something is broken


def _slow_job(started: threading.Event, gate: threading.Event, value, log: list):
    """A job that says it has started, then waits for ``gate`` before returning ``value``."""

    def job(ticket: int):
        log.append(("start", value))
        started.set()
        assert gate.wait(TIMEOUT)
        return value

    return job


def test_a_newer_request_wins_and_the_older_result_is_dropped():
    jobs, shown, errors, log = LatestWins(), [], [], []
    started, gate = threading.Event(), threading.Event()
    jobs.submit(_slow_job(started, gate, "old", log), shown.append, errors.append)
    assert started.wait(TIMEOUT)  # the old job is running...
    jobs.submit(lambda ticket: log.append(("start", "new")) or "new", shown.append, errors.append)
    assert log == [("start", "old")]  # ...and the new one waits for it: one job at a time
    gate.set()
    jobs.wait(TIMEOUT)
    assert log == [("start", "old"), ("start", "new")]
    assert shown == ["new"] and errors == []  # the old result finished, but was never published


def test_a_request_overtaken_before_it_starts_is_skipped():
    jobs, shown, log = LatestWins(), [], []
    started, gate = threading.Event(), threading.Event()
    jobs.submit(_slow_job(started, gate, 1, log), shown.append, pytest.fail)
    assert started.wait(TIMEOUT)
    jobs.submit(_slow_job(threading.Event(), gate, 2, log), shown.append, pytest.fail)
    jobs.submit(_slow_job(threading.Event(), gate, 3, log), shown.append, pytest.fail)
    gate.set()
    jobs.wait(TIMEOUT)
    assert [value for _, value in log] == [1, 3] and shown == [3]


def test_a_long_job_stops_at_its_next_check_once_overtaken():
    jobs, shown, steps = LatestWins(), [], []
    started, gate = threading.Event(), threading.Event()

    def long_job(ticket: int):
        for step in range(1000):
            jobs.check(ticket)  # raises Superseded once a newer request exists
            steps.append(step)
            if step == 2:
                started.set()
                assert gate.wait(TIMEOUT)
        return "long"

    jobs.submit(long_job, shown.append, pytest.fail)
    assert started.wait(TIMEOUT)
    jobs.submit(lambda ticket: "short", shown.append, pytest.fail)
    gate.set()
    jobs.wait(TIMEOUT)
    assert steps == [0, 1, 2] and shown == ["short"]


def test_errors_reach_failed_only_while_newest():
    jobs, shown, errors = LatestWins(background=False), [], []

    def broken(ticket: int):
        raise ValueError("no face")

    jobs.submit(broken, shown.append, errors.append)
    assert [str(err) for err in errors] == ["no face"] and shown == []

    def overtaken_then_broken(ticket: int):
        jobs.newer()  # a newer request arrives while this one runs
        raise ValueError("too late to matter")

    jobs.submit(overtaken_then_broken, shown.append, errors.append)
    assert len(errors) == 1  # a stale failure is dropped like a stale result
    with pytest.raises(Superseded):
        jobs.check(1)


def test_in_the_foreground_everything_happens_in_the_call():
    jobs, shown = LatestWins(background=False, debounce_s=5.0), []
    ticket = jobs.submit(lambda t: t * 10, shown.append, pytest.fail)
    assert shown == [ticket * 10] and not jobs.is_stale(ticket)
    jobs.debounce(lambda: shown.append("now"))  # no timer in the foreground
    assert shown[-1] == "now"


def test_publish_only_while_newest():
    jobs, shown = LatestWins(), []
    first = jobs.newer()
    assert jobs.publish(first, lambda: shown.append(1))
    second = jobs.newer()
    assert jobs.is_stale(first) and not jobs.is_stale(second)
    assert not jobs.publish(first, lambda: shown.append(2))
    assert shown == [1]


def test_a_burst_is_debounced_into_one_start():
    jobs, starts = LatestWins(debounce_s=0.3), []
    for value in (96, 128, 160):  # three slider moves within microseconds
        jobs.debounce(lambda value=value: starts.append(value))
    jobs.wait(TIMEOUT)
    assert starts == [160]


def test_submitting_cancels_a_pending_debounced_start():
    jobs, starts, shown = LatestWins(debounce_s=TIMEOUT), [], []
    jobs.debounce(lambda: starts.append("late"))
    jobs.submit(lambda ticket: "now", shown.append, pytest.fail)  # the Stylize button covers it
    jobs.wait(TIMEOUT)
    assert shown == ["now"] and starts == []


def test_tickets_are_unique_across_threads():
    jobs, tickets = LatestWins(), []
    lock = threading.Lock()

    def take(count: int) -> None:
        mine = [jobs.newer() for _ in range(count)]
        with lock:
            tickets.extend(mine)

    threads = [threading.Thread(target=take, args=(500,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert sorted(tickets) == list(range(1, 4001))
