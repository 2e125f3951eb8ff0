"""The ``detection`` evaluation stage: VOC07+12 trainval -> VOC07 test by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from rich.console import Console

from moeheads.assembly.build import build_dataset
from moeheads.errors import ConfigError
from moeheads.eval import PROTOCOLS
from moeheads.eval.context import DatasetRef, EvalContext, StageOptions, as_component, evenly
from moeheads.eval.detection.coco_check import import_coco
from moeheads.eval.detection.protocol import detection_transfer, summary_of
from moeheads.eval.stages import stage
from moeheads.recipe.schema import Component


class DetectionOptions(StageOptions, PROTOCOLS.get("detection").options):  # type: ignore[misc]
    """``detection`` options: the schedule (see :func:`detection_transfer`) plus the data.

    Attributes:
        dataset: A detection dataset (``voc`` by default).
        root: Its folder (for ``voc``: the folder holding ``VOCdevkit``).
        train_split: The split fine-tuned on (``trainval``: VOC07+12 for ``voc``).
        test_split: The split scored (``test``: VOC07 test for ``voc``).
        max_images: Use at most this many images of each split, evenly spread.
    """

    dataset: DatasetRef | None = None
    root: Path | None = None
    train_split: str = "trainval"
    test_split: str = "test"
    max_images: int | None = Field(None, ge=1)

    def check(self) -> None:
        """pycocotools is installed, and ``voc`` has its ``root``."""
        import_coco()
        component = as_component(self.dataset or "voc", self.root)
        if component.name == "voc" and "root" not in component.options:
            raise ConfigError(
                "protocol 'detection' needs PASCAL VOC: give --set root=PATH (the folder "
                "holding VOCdevkit/VOC2007 and VOCdevkit/VOC2012), or name another detection "
                "dataset with --set dataset=NAME"
            )


def _data(o: DetectionOptions, split: str) -> tuple[Component, Any]:
    component = as_component(o.dataset or "voc", o.root, split)
    data = build_dataset(component)
    indices = evenly(len(data), o.max_images)
    if len(indices) < len(data):
        from torch.utils.data import Subset

        subset = Subset(data, indices)
        subset.classes = data.classes  # type: ignore[attr-defined]
        data = subset
    return component, data


@stage("detection", DetectionOptions, distributed=True)
def run_detection(ctx: EvalContext, o: DetectionOptions) -> dict[str, Any]:
    """Fine-tune Faster R-CNN C4 from the backbone; VOC-style AP/AP50/AP75 and COCO AP."""
    train_c, train = _data(o, o.train_split)
    test_c, test = _data(o, o.test_split)
    options = {name: getattr(o, name) for name in PROTOCOLS.get("detection").options.model_fields}
    console = Console()
    result = detection_transfer(
        ctx.trained.backbone.module, train, test, train.classes, ctx.device,
        ctx.eval_dir / "checkpoints" / f"{ctx.stem}.pt", ctx.recipe.views.mean,
        ctx.recipe.views.std, lambda line: console.print(line, highlight=False),
        o.num_workers, **options,
    )
    return {
        "summary": summary_of(result),
        "per_class_AP50": result.voc.per_class,
        "per_threshold": {f"{t:.2f}": v for t, v in result.voc.per_threshold.items()},
        "coco": result.coco,
        "losses": result.losses[-1] if result.losses else {},
        "train": {"dataset": train_c.name, "split": o.train_split, "images": len(train)},
        "test": {"dataset": test_c.name, "split": o.test_split, "images": len(test)},
    }
