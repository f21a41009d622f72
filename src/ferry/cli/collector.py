"""The cyclic garbage collector at start-up and at exit. At start-up, imports allocate ~60,000 objects
that live as long as the process, and the young-generation collections they set off find nothing to
free but cost about a tenth of the imports' CPU (~40 ms on this project's slower machines;
docs/decisions.md, "Start-up").

:func:`defer` raises the first generation's threshold so that start-up runs without collections yet
stays bounded: a command that allocates a great deal before :func:`resume` is still collected, only
less often. :func:`resume` freezes what start-up made (never traversed again; reference counting still
frees any of it) and restores the thresholds the process had. At exit: :func:`skip_at_exit`.
"""

from __future__ import annotations

import atexit
import gc

#: Net allocations between young-generation collections during start-up (CPython's default: 700).
START_UP_THRESHOLD = 200_000

_saved: tuple[int, int, int] | None = None


def defer() -> None:
    """Collect rarely until :func:`resume` (once: a second call keeps the first one's thresholds)."""
    global _saved
    if _saved is None:
        _saved = gc.get_threshold()
        gc.set_threshold(max(START_UP_THRESHOLD, _saved[0]), *_saved[1:])


def resume() -> None:
    """Start-up is over: freeze its objects and collect as usual again."""
    global _saved
    if _saved is not None:
        gc.freeze()
        gc.set_threshold(*_saved)
        _saved = None


def skip_at_exit() -> None:
    """Freeze the heap at exit (``gc.freeze`` from ``atexit``), before the interpreter's own last
    collections, which traverse every object the run made: ~40 ms of a no-op sync's 0.4 CPU-s, more
    for a million-tag plan. Nothing of a command waits for a collection at exit (journal, report and
    log are closed by the command; the standard streams are flushed by the interpreter, and atexit
    handlers still run)."""
    atexit.unregister(gc.freeze)  # once, however many runs a process makes
    atexit.register(gc.freeze)
