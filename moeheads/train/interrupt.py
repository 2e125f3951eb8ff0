"""Ctrl-C during training: the first stops the run at the next step boundary, where model,
optimiser, BatchNorm statistics, RNG and sampler state agree, and a checkpoint is written
there; a second Ctrl-C stops at once, without a checkpoint, and says so."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any


class GracefulInterrupt:
    """Turns SIGINT into a request the training loop honours at its next step boundary.

    Used as a context manager around the loop; outside the main thread (where signal
    handlers cannot be installed) it does nothing and Ctrl-C raises as usual.

    Attributes:
        requested: Whether Ctrl-C was pressed.

    Example:
        >>> with GracefulInterrupt() as interrupt:
        ...     interrupt.requested
        False
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step, with a checkpoint (Ctrl-C again stops at once, "
              "without one)", file=sys.stderr, flush=True)

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
