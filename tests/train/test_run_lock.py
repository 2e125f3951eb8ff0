"""One writer per run directory: the lock refuses a second holder, dies with its process,
and reports a lock file left by a dead process."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from moeheads.rundir.lock import LOCK_NAME, RunLock, RunLockedError

HOLD = """
import sys, time
from pathlib import Path
from moeheads.rundir.lock import RunLock
lock = RunLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
if sys.argv[2] == "crash":
    import os
    os._exit(9)   # no release: the kernel drops the flock, the file stays
time.sleep(60)
"""


def test_second_holder_in_the_same_process_is_refused(tmp_path: Path) -> None:
    with RunLock(tmp_path), pytest.raises(RunLockedError, match="is in use by process"):
        RunLock(tmp_path).acquire()
    with RunLock(tmp_path) as lock:  # released: free again, and nothing stale
        assert lock.stale is None
    assert not (tmp_path / LOCK_NAME).exists()


def test_another_process_holding_the_lock_is_named(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "hold"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"process {holder.pid} on"):
            RunLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path) as lock:  # the kernel released it with the process
        assert lock.stale is not None and lock.stale["pid"] == holder.pid


def test_a_crashed_holder_leaves_a_stale_lock_that_is_taken_over(tmp_path: Path) -> None:
    crashed = subprocess.run([sys.executable, "-c", HOLD, str(tmp_path), "crash"],
                             capture_output=True, text=True, timeout=60)
    assert crashed.returncode == 9 and (tmp_path / LOCK_NAME).exists()
    pid = json.loads((tmp_path / LOCK_NAME).read_text())["pid"]
    with RunLock(tmp_path) as lock:
        assert lock.stale is not None and lock.stale["pid"] == pid
