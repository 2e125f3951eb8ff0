"""One writer per run directory: an exclusive lock held while a run writes to it.

The lock is an advisory ``flock`` on ``<run>/.lock``, which the kernel releases when the
holding process exits or crashes, so a lock can never outlive its process. The file
also records who holds it (process id, host, start time): a second run into the same
directory fails at once with that information, and a lock file left by a dead process is
reported as stale when it is taken over. Where ``fcntl`` is missing (Windows), an
exclusively created file stands in, and a stale one is detected by its process id.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from moeheads.errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


class RunLockedError(ConfigError):
    """Another process is writing to the run directory."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "another process"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("time", 0)))
    return f"process {holder.get('pid')} on {holder.get('host')} (since {started})"


class RunLock:
    """Exclusive lock on a run directory, as a context manager.

    Args:
        run_dir: The run directory (created when missing); the lock file is ``.lock`` in it.
        on_busy: When given, a busy lock is waited for instead of refused: this is called
            once with a line saying who holds it, then the lock is awaited.

    Attributes:
        stale: What a lock file left by a process that no longer runs said (``None``
            when there was none), so the caller can report it.

    Raises:
        RunLockedError: On entry, when another live process holds the lock.

    Example:
        >>> import tempfile
        >>> with RunLock(Path(tempfile.mkdtemp())) as lock:
        ...     pass
    """

    def __init__(self, run_dir: Path, on_busy: Callable[[str], None] | None = None) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.stale: dict | None = None
        self.on_busy = on_busy
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock (see the class)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        previous = _holder(self.path) if self.path.exists() else {}
        if fcntl is not None:
            fd = self._flock()
        else:  # pragma: no cover - Windows
            if previous and _alive(int(previous.get("pid", -1))):
                raise RunLockedError(self._busy(previous))
            self.path.unlink(missing_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        if previous and previous.get("pid") != os.getpid():
            self.stale = previous
        record = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(record).encode())
        self._fd = fd
        return self

    def _flock(self) -> int:
        """A descriptor of the lock file, locked; retried when the file was replaced
        between opening and locking it (a holder releasing at that moment)."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                if self.on_busy is None:
                    os.close(fd)
                    raise RunLockedError(self._busy(_holder(self.path))) from None
                self.on_busy(f"waiting for {self.path.parent}: in use by "
                             f"{_describe(_holder(self.path))}")
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)

    def release(self) -> None:
        """Give the lock up and remove the lock file."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def _busy(self, holder: dict) -> str:
        return (
            f"{self.path.parent} is in use by {_describe(holder)}; wait for it to finish, or "
            "give this run another name (--set name=...) or output_dir"
        )

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()
