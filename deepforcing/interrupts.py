"""Stop on SIGTERM exactly as on Ctrl-C, so that every ``finally`` / ``__exit__`` cleans up the unit in flight.

Python turns SIGINT into :class:`KeyboardInterrupt`, which unwinds the stack: the streaming mp4 writer removes its
temporary file, finished files stay. SIGTERM (``kill``, a job scheduler, torchrun stopping its workers) would
end the process without unwinding and leave ``.*.tmp.mp4`` files behind. :func:`stop_on_signals` installs a
SIGTERM handler that raises :class:`Terminated` (a ``KeyboardInterrupt``) instead, and :func:`exit_code` gives
the conventional exit status (128 + signal number: 130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM (or another signal routed here)."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(f"received {signal.Signals(signum).name}")
        self.signum = int(signum)


def exit_code(exc: BaseException) -> int:
    """Exit status for an interrupt: ``128 + signum`` (130 for Ctrl-C / SIGINT, 143 for SIGTERM)."""
    return 128 + getattr(exc, "signum", signal.SIGINT)


def _raise_terminated(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    raise Terminated(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (SIGINT raises ``KeyboardInterrupt`` as always).

    The previous SIGTERM handler is restored on exit. Outside the main thread (where Python cannot install
    handlers) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
