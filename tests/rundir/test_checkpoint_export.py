import json
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import load_file
from torch import nn

from moeheads.errors import CheckpointError
from moeheads.rundir.checkpoint import TrainingState, save_checkpoint
from moeheads.rundir.export import export_backbone


class SSLModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = torchvision.models.resnet18()
        self.backbone.fc = nn.Identity()
        self.head = nn.Linear(512, 16)


def test_export_loads_into_plain_torchvision_resnet18(tmp_path: Path) -> None:
    model = SSLModel()
    model.backbone.train()(torch.randn(4, 3, 32, 32))  # non-trivial BatchNorm statistics
    run = tmp_path / "runs" / "demo"
    info = save_checkpoint(run, TrainingState(model, step=7, epoch=1,
                                             metadata={"architecture": "resnet18"}))
    out = export_backbone(run, run / "backbone.safetensors")

    plain = torchvision.models.resnet18()
    plain.fc = nn.Identity()
    plain.load_state_dict(load_file(out), strict=True)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(plain.eval()(x), model.backbone.eval()(x), rtol=0, atol=0)

    sidecar = json.loads((run / "backbone.json").read_text())
    assert sidecar["architecture"] == "resnet18" and sidecar["feature_dim"] == 512
    assert sidecar["source_checkpoint"] == str(info.path) and sidecar["source_step"] == 7
    assert sidecar["file"]["bytes"] == out.stat().st_size

    with pytest.raises(CheckpointError, match=r"backbone\.safetensors exists"):
        export_backbone(run, out)
    with pytest.raises(CheckpointError, match=r"no keys under 'encoder\.'.*backbone, head"):
        export_backbone(info.path, tmp_path / "x.safetensors", prefix="encoder.")
