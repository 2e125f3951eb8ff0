"""Two gloo processes on CPU give the loss and gradients of one process with the full batch."""

import socket
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from moeheads.losses import create_loss
from moeheads.runtime.sync_batchnorm import convert_sync_batchnorm

WORLD = 2
BATCH = 8  # global batch; each rank gets BATCH // WORLD images
CASES = {
    "ntxent": {},
    "vicreg": {},
    "barlow": {},
    "equimod": {"embed_dim": 6, "param_embed_dim": 4, "hidden_dim": 8},
    "star_eq": {"embed_dim": 6, "param_embed_dim": 4, "hidden_dim": 8},
    "byol": {"embed_dim": 6, "hidden_dim": 8},
    "augself": {"in_features": 6, "hidden_dim": 8},
}


class Toy(nn.Module):
    """A linear encoder plus a loss, so DDP averages the gradients of both.

    The losses' predictors are in training mode: with synchronised BatchNorm, the ranks
    together see the statistics of the full batch.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Linear(5, 6)
        self.loss = create_loss(name, **CASES[name])

    def forward(self, views: torch.Tensor, original: torch.Tensor, params: torch.Tensor):
        z = self.encoder(torch.cat([views.flatten(0, 1), original]))
        z_views, z_original = z[: views.shape[0] * views.shape[1]], z[-original.shape[0] :]
        z_views = z_views.reshape(*views.shape[:2], -1)
        if self.loss.kind == "equivariant":
            return self.loss(z_views, z_original, params).loss
        if self.loss.kind == "feature":
            return self.loss(z_views, params).loss
        return self.loss(z_views[0], z_views[1]).loss


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    views = torch.randn(2, BATCH, 5, generator=generator)
    return (
        views,
        torch.randn(BATCH, 5, generator=generator),
        torch.randn(2, BATCH, 11, generator=generator),
    )


def _run(name: str, rank: int | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Loss (averaged over ranks) and parameter gradients for ``rank``'s slice, or all."""
    views, original, params = _data()
    model = Toy(name)
    if rank is not None:
        part = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
        views, original, params = views[:, part], original[part], params[:, part]
        model = DistributedDataParallel(convert_sync_batchnorm(model, torch.device("cpu")))
    loss = model(views, original, params)
    loss.backward()
    if rank is not None:
        loss = loss.detach().clone()
        dist.all_reduce(loss)
        loss /= WORLD
    grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    return loss.detach(), grads


def _worker(rank: int, port: int, out: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        torch.set_num_threads(1)
        results = {name: _run(name, rank) for name in CASES}
        views = torch.randn(4, 6)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            create_loss("ntxent", gather_distributed=False)(views, views + 1)
        results["warned"] = any("gather_distributed=False" in str(w.message) for w in caught)
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def distributed_results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    out = Path(tmp_path_factory.mktemp("ddp")) / "results.pt"
    mp.start_processes(_worker, args=(_free_port(), str(out)), nprocs=WORLD, start_method="spawn")
    return torch.load(out, weights_only=False)


@pytest.mark.parametrize("name", list(CASES))
def test_ddp_equals_full_batch(distributed_results: dict, name: str) -> None:
    loss, grads = distributed_results[name]
    full_loss, full_grads = _run(name, rank=None)
    torch.testing.assert_close(loss, full_loss, atol=1e-6, rtol=1e-5)
    assert len(grads) == len(full_grads)
    for grad, full in zip(grads, full_grads, strict=True):
        torch.testing.assert_close(grad, full, atol=1e-6, rtol=1e-5)


def test_warns_when_gathering_is_off_under_ddp(distributed_results: dict) -> None:
    assert distributed_results["warned"]


def test_no_warning_without_ddp() -> None:
    views = torch.randn(4, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create_loss("ntxent", gather_distributed=False)(views, views + 1)
