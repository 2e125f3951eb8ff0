"""Exceptions raised for problems a user can cause and fix.

Every error that stems from user input (a recipe field, a component name, a
data path, a checkpoint file, a tensor of the wrong shape) is a
:class:`MoeheadsError`. The command-line tool prints such errors as one line and
exits with status 2 (128 + the signal for :class:`InterruptedRunError`), without a
traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


class MoeheadsError(Exception):
    """Base class for errors caused by user input (bad option, path, name or file)."""


class ConfigError(MoeheadsError, ValueError):
    """An invalid option, recipe field or component name."""


class DataError(MoeheadsError, FileNotFoundError):
    """A dataset that is missing, incomplete or unreadable."""


class CheckpointError(MoeheadsError):
    """A checkpoint that is missing, damaged or does not match the model."""


class ShapeError(MoeheadsError, ValueError):
    """A tensor whose shape does not fit (wrong rank, feature width or batch size)."""


class NonFiniteLossError(MoeheadsError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class InterruptedRunError(MoeheadsError):
    """Training was interrupted (Ctrl-C, or SIGTERM/SIGUSR1 from a scheduler), normally
    after a checkpoint was written.

    Attributes:
        signal_number: The signal that stopped the run (``signal.SIGINT`` for Ctrl-C).
        exit_code: The command's exit status: ``128 + signal_number``, as a shell reports a
            process ended by that signal (130 for Ctrl-C, 143 for SIGTERM, 138 for SIGUSR1
            on Linux).
    """

    def __init__(self, message: str, signal_number: int = 2) -> None:
        super().__init__(message)
        self.signal_number = signal_number

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number


class WriteError(MoeheadsError, OSError):
    """A file that could not be written: the disk or quota is full, the file-size limit
    was reached, or the place is read-only. What was there before is left as it was."""


class CheckpointWriteError(WriteError, CheckpointError):
    """A checkpoint or export that could not be written (a :class:`CheckpointError` too)."""


#: errno -> why, in words (ENOSPC, EDQUOT, EFBIG, EROFS, EACCES).
_WHY = {28: "no space left on the device", 122: "the disk quota is exhausted",
        27: "the file-size limit was reached (ulimit -f)", 30: "the file system is read-only",
        13: "permission denied"}
_WHY_TEXT = {"no space left": _WHY[28], "quota": _WHY[122], "file too large": _WHY[27],
             "read-only": _WHY[30], "permission denied": _WHY[13]}


@contextmanager
def writing(path: str | os.PathLike[str], what: str = "",
            error_type: type[WriteError] = WriteError) -> Iterator[None]:
    """Turn the failures of writing ``path`` (an ``OSError``, or safetensors' error with the
    same cause) into one :class:`WriteError` (or ``error_type``) that names the file and
    the reason.

    Example:
        >>> with writing("/proc/version", "a test file"):
        ...     open("/proc/version", "w").write("x")  # doctest: +SKIP
        Traceback (most recent call last):
        moeheads.errors.WriteError: could not write a test file /proc/version: permission denied
    """
    try:
        yield
    except WriteError:
        raise
    except Exception as error:  # OSError, or safetensors' SafetensorError (a RuntimeError)
        text = str(error).lower()
        errno = getattr(error, "errno", None)
        why = _WHY.get(errno) if errno is not None else None
        why = why or next((v for k, v in _WHY_TEXT.items() if k in text), None)
        if why is None and not isinstance(error, OSError):
            raise
        label = f"{what} {path}" if what else str(path)
        raise error_type(f"could not write {label}: {why or error}; files written before "
                         "are unchanged") from None
