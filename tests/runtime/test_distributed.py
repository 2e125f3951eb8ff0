"""Process-group set-up: one GPU per process, and a timeout that covers rank 0's work."""

from datetime import timedelta

import pytest
import torch
import torch.distributed as dist

from moeheads.errors import ConfigError
from moeheads.runtime import distributed
from moeheads.runtime.distributed import init_distributed, resolve_device


def test_an_explicit_gpu_index_is_refused_for_several_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(dist, "init_process_group", lambda *a, **k: None)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ConfigError, match=r"'cuda:1'.*2 processes.*LOCAL_RANK"):
        init_distributed("cuda:1")
    assert resolve_device("cuda", local_rank=1, world_size=2) == torch.device("cuda:1")
    assert resolve_device("cuda:1", local_rank=0, world_size=1) == torch.device("cuda:1")


def test_process_group_waits_as_long_as_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group",
                        lambda *a, **k: calls.append(k))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    init_distributed("cpu", timeout_minutes=90)
    assert calls[0]["timeout"] == timedelta(minutes=90)
    assert calls[0]["backend"] == "gloo"


def test_rank_zero_computes_and_every_rank_receives_its_value_or_error() -> None:
    from moeheads.runtime.distributed import DistContext

    class Rank1(DistContext):
        def broadcast_object(self, obj: object) -> object:
            assert obj is None  # rank 1 computes nothing
            return ConfigError("rank 0 failed")

    assert DistContext().on_main(lambda: 3) == 3
    with pytest.raises(ConfigError, match="rank 0 failed"):
        Rank1(rank=1, world_size=2).on_main(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # not among the errors passed on: raised as is
        DistContext().on_main(lambda: 1 / 0)
