"""Requeueing a Slurm job after a preemption checkpoint (with a stand-in scontrol)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moeheads.errors import ConfigError
from moeheads.runtime.slurm import requeue_job, slurm_job_id


def test_job_id_of_a_plain_job_and_of_an_array_task(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    assert slurm_job_id() is None
    monkeypatch.setenv("SLURM_JOB_ID", "812")
    assert slurm_job_id() == "812"
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "800")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert slurm_job_id() == "800_3"


def _fake_scontrol(tmp_path: Path, status: int) -> Path:
    log = tmp_path / "calls.txt"
    script = tmp_path / "bin" / "scontrol"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\necho "$@" >> {log}\necho refused >&2\nexit {status}\n')
    script.chmod(0o755)
    return log


def test_requeue_calls_scontrol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _fake_scontrol(tmp_path, 0)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    requeue_job("800_3")
    assert log.read_text() == "requeue 800_3\n"


def test_a_refused_requeue_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_scontrol(tmp_path, 1)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ConfigError, match="scontrol requeue 9 failed: refused"):
        requeue_job("9")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="scontrol is not on PATH"):
        requeue_job("9")


def test_requeue_this_job_outside_slurm_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from moeheads.runtime.slurm import requeue_this_job

    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    assert "not running under Slurm" in requeue_this_job()
