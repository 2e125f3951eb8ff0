"""Sweeps through submitit: the launcher options, the Slurm job array it would submit, the
distributed environment of a task, and local runs (with a preempted, requeued run)."""

from __future__ import annotations

import os
import pickle
import signal
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

submitit = pytest.importorskip("submitit")
from submitit.slurm import slurm  # noqa: E402

from moeheads.cli import app  # noqa: E402
from moeheads.errors import ConfigError  # noqa: E402
from moeheads.experiments.launch import (  # noqa: E402
    SweepTask,
    distributed_environment,
    submit_sweep,
)
from moeheads.experiments.launch_options import LauncherOptions, parse_slurm_pairs  # noqa: E402
from moeheads.experiments.sweep import DONE, load_sweep, run_status  # noqa: E402
from moeheads.rundir.checkpoint import latest_valid_checkpoint  # noqa: E402
from tests.train.recipes import tiny_recipe, write_recipe  # noqa: E402


def _recipe(tmp_path: Path, **changes: Any) -> Path:
    recipe = tiny_recipe(tmp_path / "runs", monitor__knn_every=0, monitor__cca_every=0,
                         **changes)
    return write_recipe(tmp_path / "tiny.yaml", recipe)


def test_launcher_block_and_options_merge_with_the_command_line_winning() -> None:
    block = {"partition": "gpu", "gpus_per_node": 4, "slurm": {"qos": "high"}}
    options = LauncherOptions.from_block(block).updated(
        partition="debug", nodes=None, slurm=parse_slurm_pairs(["--mail-type=END"]))
    assert options.partition == "debug" and options.gpus_per_node == 4 and options.nodes == 1
    assert options.slurm == {"qos": "high", "mail_type": "END"}
    assert options.tasks_per_node == 4 and LauncherOptions().tasks_per_node == 1
    parameters = options.slurm_parameters("study")
    assert parameters["slurm_partition"] == "debug" and parameters["tasks_per_node"] == 4
    assert "slurm_account" not in parameters and "mem_gb" not in parameters
    with pytest.raises(ConfigError, match=r"launcher\.gpus: unknown field"):
        LauncherOptions.from_block({"gpus": 4})
    with pytest.raises(ConfigError, match=r"launcher\.mem_gb: a non-negative integer"):
        LauncherOptions().updated(mem_gb="lots")
    with pytest.raises(ConfigError, match="--slurm expects KEY=VALUE"):
        parse_slurm_pairs(["qos"])


def test_distributed_environment_from_slurm_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    slurm_env = {"SLURM_JOB_ID": "77", "SLURM_ARRAY_JOB_ID": "70", "SLURM_ARRAY_TASK_ID": "3",
                 "SLURM_NTASKS": "4", "SLURM_JOB_NUM_NODES": "2", "SLURM_NODEID": "1",
                 "SLURM_PROCID": "3", "SLURM_LOCALID": "1", "SLURM_JOB_NODELIST": "gpu[07-08]",
                 "SUBMITIT_EXECUTOR": "slurm"}
    for key, value in slurm_env.items():
        monkeypatch.setenv(key, value)
    env = distributed_environment(submitit.JobEnvironment())
    assert {k: v for k, v in env.items() if k != "MASTER_PORT"} == {
        "RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "gpu07"}
    assert 20000 <= int(env["MASTER_PORT"]) < 40000
    other = distributed_environment(SimpleNamespace(
        num_tasks=4, num_nodes=2, global_rank=0, local_rank=0, hostnames=["a", "b"],
        job_id="70_4"))
    assert other["MASTER_PORT"] != env["MASTER_PORT"]  # array tasks on one node do not clash
    assert distributed_environment(SimpleNamespace(num_tasks=1)) == {}


@pytest.fixture
def fake_sbatch(monkeypatch: pytest.MonkeyPatch) -> None:
    """submitit's Slurm executor without a cluster: srun is 'found' and sbatch answers."""
    monkeypatch.setattr(slurm.SlurmExecutor, "affinity", lambda self=None: 1)
    monkeypatch.setattr(slurm.SlurmExecutor, "_make_submission_command",
                        lambda self, path: ["echo", "Submitted batch job 4242"])


def test_slurm_launcher_submits_one_job_array(tmp_path: Path, fake_sbatch: None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = yaml.safe_load(_recipe(tmp_path).read_text())
    recipe["launcher"] = {"nodes": 2, "parallel": 1, "slurm": {"constraint": "a100"}}
    path = write_recipe(tmp_path / "tiny.yaml", recipe)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [
        "sweep", str(path), "--grid", "heads.num_experts=2,4", "--launcher", "slurm",
        "--partition", "gpu", "--gpus-per-node", "2", "--cpus-per-task", "8", "--mem", "32",
        "--time", "120", "--account", "lab", "--slurm", "qos=high"])
    assert result.exit_code == 0, result.output
    assert "submitted 2 runs as Slurm job array 4242" in result.output
    folder = tmp_path / "runs" / "tiny-sweep"
    script = (folder / "submitit" / "4242_submission.sh").read_text()
    for line in ("--array=0-1%1", "--partition=gpu", "--account=lab", "--nodes=2",
                 "--ntasks-per-node=2", "--gpus-per-node=2", "--cpus-per-task=8", "--mem=32GB",
                 "--time=120", "--qos=high", "--constraint=a100", "--signal=USR2@90",
                 "--job-name=tiny-sweep"):
        assert f"#SBATCH {line}\n" in script, line
    assert "srun" in script and "submitit.core._submit" in script
    tasks = [pickle.loads((folder / "submitit" / f"4242_{i}_submitted.pkl").read_bytes())
             for i in (0, 1)]
    assert [t.function.index for t in tasks] == [0, 1]
    assert all(isinstance(t.function, SweepTask) and t.function.cwd == str(tmp_path)
               for t in tasks)
    requeued = tasks[1].function.checkpoint()  # on preemption: the same run again
    assert requeued.function.index == 1 and requeued.function.plan == tasks[1].function.plan
    assert (folder / "sweep.yaml").is_file()


def test_unknown_launcher_and_local_on_two_nodes_are_refused(tmp_path: Path) -> None:
    plan = load_sweep(_recipe(tmp_path), grid=["heads.num_experts=2"])
    with pytest.raises(ConfigError, match="--launcher: slurm or local"):
        submit_sweep(plan, "pbs", LauncherOptions())
    with pytest.raises(ConfigError, match="local launcher runs on one node"):
        submit_sweep(plan, "local", LauncherOptions(nodes=2))


def test_local_launcher_requeues_a_preempted_run_which_resumes(tmp_path: Path) -> None:
    plan = load_sweep(_recipe(tmp_path, trainer__epochs=20), grid=["heads.num_experts=2"])
    submission = submit_sweep(plan, "local", LauncherOptions())
    (item,) = submission.submitted
    run_dir = plan.folder / plan.runs[0].name
    deadline = time.monotonic() + 120
    while latest_valid_checkpoint(run_dir) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    # what Slurm does ahead of preemption or the time limit: submitit's signal to the task
    controller = item.job._process.pid
    children = Path(f"/proc/{controller}/task/{controller}/children").read_text().split()
    assert len(children) == 1
    os.kill(int(children[0]), signal.SIGUSR2)
    lines: list[str] = []
    assert submission.wait(lines.append, poll_s=0.2) == 0
    assert lines == [f"{plan.runs[0].name}: done"]
    log = item.job.stdout() or ""
    assert "Requeued" in log and "resuming" in log
    assert (run_dir / DONE).is_file() and latest_valid_checkpoint(run_dir).step == 80
    assert [s.state for s in run_status(plan)] == ["done"]


@pytest.mark.slow
def test_local_launcher_runs_quickstart_sweep_and_compare_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    overrides = ["trainer.epochs=1", "trainer.steps_per_epoch=2", "data.dataset.length=256",
                 "monitor.knn_every=0", "monitor.cca_every=0", "trainer.device=cpu",
                 "data.num_workers=0", "evaluation=[{protocol: routing, max_images: 32}]"]
    args = ["sweep", "quickstart", "--grid", "heads.num_experts=2,4", "--seeds", "0,1",
            "--launcher", "local", "--parallel", "2"]
    for override in overrides:
        args += ["--set", override]
    cli = CliRunner()
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output.count(": done") == 4 and "sweep finished" in result.output
    compared = cli.invoke(app, ["compare", str(tmp_path / "runs" / "quickstart-sweep")])
    assert compared.exit_code == 0, compared.output
    assert "| num_experts-2 |" in compared.output and "| num_experts-4 |" in compared.output
    assert "routing overlap" in compared.output
