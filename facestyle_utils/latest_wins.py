""""Latest request wins": the concurrency idea that keeps lesson 06's studio responsive, in one class.

An interactive app receives requests faster than it can serve them (a slider moves three times while
one image is being stylized). :class:`LatestWins` answers them so that the screen only ever shows the
answer to the newest request:

- every request gets a ticket (a number from a counter); taking a ticket makes all older ones stale;
- jobs run one at a time, in a worker thread; a job whose ticket went stale before it started is
  skipped, and a long job can call :meth:`LatestWins.check` at each step to stop early;
- a finished job's result is published only if its ticket is still the newest, under a lock, so a slow
  old result can never replace a newer one;
- :meth:`LatestWins.debounce` merges a burst of requests into one, started ``debounce_s`` after the last.

Nothing here knows about widgets or images: the studio (:mod:`facestyle_utils.widgets`) passes in plain
functions, and the tests drive it with fake slow jobs.
"""
from __future__ import annotations

import threading
from typing import Any, Callable


class Superseded(Exception):
    """Raised inside a running job (by :meth:`LatestWins.check`) when a newer request has replaced it."""


class LatestWins:
    """Runs jobs one at a time and publishes only the newest request's result.

    ``background=False`` runs each job in the calling thread (tests, and Colab, which does not show widget
    changes made from other threads); there :meth:`debounce` starts at once. ``debounce_s <= 0`` turns
    debouncing off.
    """

    def __init__(self, *, background: bool = True, debounce_s: float = 0.0) -> None:
        self.background, self.debounce_s = background, debounce_s
        self._lock = threading.RLock()  # guards the counter, the timer, and every publish
        self._compute = threading.Lock()  # one job at a time
        self._newest = 0
        self._timer: threading.Timer | None = None
        self._threads: list[threading.Thread] = []

    def newer(self) -> int:
        """A ticket for a new request (an int); from now on every older ticket is stale."""
        with self._lock:
            self._newest += 1
            return self._newest

    def is_stale(self, ticket: int) -> bool:
        """True once a newer ticket has been handed out."""
        return ticket != self._newest

    def check(self, ticket: int) -> None:
        """For a long job's steps: raise :class:`Superseded` if ``ticket`` is stale."""
        if self.is_stale(ticket):
            raise Superseded

    def publish(self, ticket: int, show: Callable[[], Any]) -> bool:
        """Call ``show()`` under the lock if ``ticket`` is still the newest; return whether it was called."""
        with self._lock:
            if self.is_stale(ticket):
                return False
            show()
            return True

    def submit(self, job: Callable[[int], Any], done: Callable[[Any], Any],
               failed: Callable[[Exception], Any]) -> int:
        """Take a ticket and run ``job(ticket)``; then ``done(result)``, or ``failed(error)`` if it raised.

        Both are called only while the ticket is the newest (:meth:`publish`); a job that raised
        :class:`Superseded` just ends. A pending debounced start is cancelled (this request covers it).
        Returns the ticket.
        """
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
        ticket = self.newer()

        def work() -> None:
            with self._compute:
                if self.is_stale(ticket):
                    return
                try:
                    result = job(ticket)
                except Superseded:
                    return
                except Exception as err:  # the caller turns it into a message
                    self.publish(ticket, lambda error=err: failed(error))  # bound now: `err` ends with the block
                    return
                self.publish(ticket, lambda: done(result))

        if not self.background:
            work()
            return ticket
        thread = threading.Thread(target=work, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return ticket

    def debounce(self, start: Callable[[], Any]) -> None:
        """Call ``start()`` once, ``debounce_s`` seconds after the last of a burst of calls."""
        if not self.background or self.debounce_s <= 0:
            start()
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.debounce_s, start)
            self._timer.daemon = True
            self._timer.start()

    def wait(self, timeout: float = 300.0) -> None:
        """Block until a pending debounced start and all running jobs are done (each join up to ``timeout`` s)."""
        with self._lock:
            timer = self._timer
        if timer is not None:
            timer.join(timeout)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
