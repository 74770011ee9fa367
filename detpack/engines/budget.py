"""A wall-clock budget for engines that run rule regexes with Python's backtracking `re`.

The validation refuses regular expressions that backtrack exponentially (detpack/validate/regexes.py),
but polynomial blow-ups remain: `.*x.*y.*z` searched in a 2,000-character value already takes a minute.
The Sigma reference engine (REGEXP in SQLite calls Python `re`), the SPL evaluator and the EQL engine
therefore run each rule under `time_budget()`: past the budget the work is interrupted and reported as
an engine error of the rule, so `detpack test` and `detpack build` end in bounded time.

Python's regular expression engine checks for signals while it matches, so a SIGALRM timer interrupts it.
The budget applies on platforms with `signal.setitimer` and in the main thread (where the CLI runs);
elsewhere the block runs without one. A timer already set by the caller is restored afterwards.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

ENGINE_TIME_BUDGET_SECONDS = 10.0  # per rule and engine, over all of the data source's fixture events


class BudgetExceeded(RuntimeError):
    """The work ran longer than its budget and was interrupted."""


def budget_available() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def time_budget(seconds: float | None, what: str) -> Iterator[None]:
    """Run the block for at most `seconds` (None: ENGINE_TIME_BUDGET_SECONDS); raise BudgetExceeded after.

    An exception the interruption causes further down (SQLite wraps it as "user-defined function raised
    exception") is replaced by BudgetExceeded, which names `what` and the budget."""
    limit = ENGINE_TIME_BUDGET_SECONDS if seconds is None else seconds
    if not budget_available():
        yield
        return
    state = {"fired": False, "done": False}
    message = (
        f"{what} ran longer than its {limit:g} s budget (a regular expression that backtracks on a long "
        "value?)"
    )

    def expire(signum: int, frame: FrameType | None) -> None:
        if state["done"]:
            return
        state["fired"] = True
        raise BudgetExceeded(message)

    previous_handler = signal.signal(signal.SIGALRM, expire)
    # repeats every half second after the first expiry, in case library code swallows the first interruption
    previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, limit, 0.5)
    started = time.monotonic()
    try:
        yield
    except BudgetExceeded:
        raise
    except BaseException as exc:
        if state["fired"]:
            raise BudgetExceeded(message) from exc
        raise
    finally:
        state["done"] = True
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay > 0:  # give the caller's timer back what is left of it
            remaining = max(previous_delay - (time.monotonic() - started), 0.001)
            signal.setitimer(signal.ITIMER_REAL, remaining, previous_interval)
