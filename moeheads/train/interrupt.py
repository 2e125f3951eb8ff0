"""Stopping a run cleanly: Ctrl-C, and the signals a cluster scheduler sends.

SIGINT (Ctrl-C), SIGTERM (a scheduler's preemption or time limit; Slurm sends it, then
SIGKILL after a grace period; ``torchrun`` forwards it to every worker) and SIGUSR1
(which Slurm sends ahead of the time limit with ``--signal=USR1@<seconds>``) all stop
the run at the next step boundary, where model, optimiser, BatchNorm statistics, RNG
and sampler state agree, and a checkpoint is written there. A second Ctrl-C stops at
once, without a checkpoint, and says so; a repeated SIGTERM or SIGUSR1 changes nothing
(the checkpoint is on its way).

A handler that another library installed before training (submitit's, for example) is
not lost: once the checkpoint is written, :meth:`GracefulInterrupt.hand_over` calls it
with the signal, so that it can requeue the job.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

#: The signals that stop a run at a step boundary (SIGUSR1 where the platform has it).
STOP_SIGNALS: tuple[signal.Signals, ...] = (
    signal.SIGINT, signal.SIGTERM, *((signal.SIGUSR1,) if hasattr(signal, "SIGUSR1") else ()))


class GracefulInterrupt:
    """Turns the stop signals into a request the training loop honours at its next step
    boundary.

    Used as a context manager around the loop; outside the main thread (where signal
    handlers cannot be installed) it does nothing and the signals act as usual.

    Attributes:
        requested: Whether a stop signal arrived.
        signal_number: The first stop signal received (``None`` before one arrives).

    Example:
        >>> with GracefulInterrupt() as interrupt:
        ...     interrupt.requested
        False
    """

    def __init__(self) -> None:
        self.requested = False
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            if signum == signal.SIGINT and self.signal_number == signal.SIGINT:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise KeyboardInterrupt
            return
        self.requested = True
        self.signal_number = signum
        name = signal.Signals(signum).name
        again = (" (Ctrl-C again stops at once, without one)" if signum == signal.SIGINT
                 else "")
        print(f"\n{name}: stopping after this step, with a checkpoint{again}",
              file=sys.stderr, flush=True)

    def hand_over(self) -> None:
        """Call the handler that was installed before this one for the received signal,
        if it is a Python function (a scheduler integration's requeue, say)."""
        previous = self._previous.get(self.signal_number or -1)
        if callable(previous) and previous is not signal.default_int_handler:
            handler: Callable[[int, FrameType | None], Any] = previous
            handler(self.signal_number or 0, None)

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}
