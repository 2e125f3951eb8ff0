"""Converting a model to synchronised BatchNorm keeps what every layer computes."""

import pytest
import torch
from torch import nn

from moeheads.backbones import create_backbone
from moeheads.errors import ConfigError
from moeheads.runtime.sync_batchnorm import (
    AllReduceBatchNorm,
    AllReduceBatchNormAct,
    _convert,
    convert_sync_batchnorm,
)

BACKBONES = ["torchvision:resnet18", "timm:resnet18", "timm:regnety_004"]


def _warmed(name: str) -> nn.Module:
    """A backbone whose BatchNorm layers hold non-trivial statistics and affine parameters."""
    torch.manual_seed(0)
    model = create_backbone(name)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize("cuda", [False, True], ids=["all_reduce", "sync_batchnorm"])
@pytest.mark.parametrize("name", BACKBONES)
def test_eval_outputs_are_unchanged(name: str, cuda: bool) -> None:
    model = _warmed(name)
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(images)
        keys = model.state_dict().keys()
        converted = _convert(model, cuda)
        after = converted(images)
    assert converted.state_dict().keys() == keys
    torch.testing.assert_close(after, before, rtol=0, atol=0)
    synced = (nn.SyncBatchNorm,) if cuda else (AllReduceBatchNorm,)
    norms = [m for m in converted.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(isinstance(m, synced) for m in norms)


def test_timm_norm_act_keeps_its_activation() -> None:
    model = convert_sync_batchnorm(_warmed("timm:regnety_004"), torch.device("cpu"))
    with_act = [m for m in model.modules() if isinstance(m, AllReduceBatchNormAct)]
    assert len(with_act) == 53
    assert all(not isinstance(m.act, nn.Identity) for m in with_act[:1])


def test_unknown_subclass_that_changes_forward_is_refused() -> None:
    class ScaledBatchNorm(nn.BatchNorm2d):
        def forward(self, input: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(input)

    with pytest.raises(ConfigError, match="ScaledBatchNorm"):
        convert_sync_batchnorm(nn.Sequential(ScaledBatchNorm(3)), torch.device("cpu"))


def test_subclass_with_batchnorm_forward_is_converted() -> None:
    class Tagged(nn.BatchNorm1d):
        pass

    model = convert_sync_batchnorm(nn.Sequential(Tagged(3)), torch.device("cpu"))
    assert isinstance(model[0], AllReduceBatchNorm)
