"""Exceptions raised for problems a user can cause and fix.

Every error that stems from user input (a recipe field, a component name, a
data path, a checkpoint file, a tensor of the wrong shape) is a
:class:`MoeheadsError`. The command-line tool prints such errors as one line and
exits with status 2 (130 for :class:`InterruptedRunError`), without a traceback.
"""

from __future__ import annotations


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
