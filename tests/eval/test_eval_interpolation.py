"""Evaluation images are resized bicubically by default (AugSelf's evaluation)."""

import torch
import torchvision.transforms.v2.functional as TF

from moeheads.eval.stages_labelled import FewShotOptions, LinearOptions
from moeheads.numerics.features import EvalTransform


def test_stage_defaults_are_bicubic() -> None:
    assert LinearOptions().interpolation == "bicubic" and LinearOptions().splits == "paper"
    assert FewShotOptions().interpolation == "bicubic" and FewShotOptions().split is None


def test_bicubic_transform() -> None:
    image = torch.randint(0, 256, (3, 60, 80), dtype=torch.uint8)
    ours = EvalTransform(32, "bicubic")(image)
    resized = TF.resize(image, [32], interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
    assert torch.equal(ours, TF.center_crop(resized, [32, 32]))
    assert not torch.equal(ours, EvalTransform(32)(image))
    assert repr(EvalTransform(32)) == "EvalTransform(size=32)"  # earlier cache keys kept
