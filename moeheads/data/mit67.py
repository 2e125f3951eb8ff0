"""MIT Indoor-67 from its ``Images/`` folder and ``TrainImages.txt`` / ``TestImages.txt`` lists."""

from __future__ import annotations

from pathlib import Path

from moeheads.data.base import missing_data
from moeheads.data.folder import ImageFiles, no_download
from moeheads.data.transfer import SplitLoader, register_transfer

LAYOUT = "<root>/mit67/{Images/<class>/<image>, TrainImages.txt, TestImages.txt}"
OBTAIN = "download Images and the split lists from https://web.mit.edu/torralba/www/indoor.html"
_FOLDERS = ("mit67", "indoorCVPR_09", ".")


def find_mit67(root: Path) -> Path:
    """The folder under ``root`` that holds ``Images/`` and the split lists."""
    for name in _FOLDERS:
        folder = Path(root) / name
        if (folder / "Images").is_dir() and (folder / "TrainImages.txt").is_file():
            return folder
    raise missing_data("mit67", Path(root) / "mit67", LAYOUT, OBTAIN)


def read_mit67(folder: Path, official: str, skip_corrupt: bool = False) -> ImageFiles:
    """One official split (``train`` or ``test``) of MIT67 from its split list."""
    images = folder / "Images"
    classes = sorted(p.name for p in images.iterdir() if p.is_dir())
    index = {name: i for i, name in enumerate(classes)}
    list_file = folder / ("TrainImages.txt" if official == "train" else "TestImages.txt")
    if not list_file.is_file():
        raise missing_data("mit67", list_file, LAYOUT, OBTAIN)
    entries = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    paths = [images / entry for entry in entries]
    targets = [index.get(entry.split("/")[0], -1) for entry in entries]
    unknown = [e for e, t in zip(entries, targets, strict=True) if t < 0]
    if unknown:
        raise missing_data("mit67", images / unknown[0].split("/")[0], LAYOUT, OBTAIN)
    return ImageFiles(paths, targets, classes, name="mit67", skip_corrupt=skip_corrupt)


@register_transfer(
    "mit67", "MIT Indoor-67 (67 scene classes; official 80/20 images per class train/test lists)"
)
def _mit67(root: Path, *, download: bool, skip_corrupt: bool, split_seed: int) -> SplitLoader:
    """``root`` holds ``mit67/`` (or ``indoorCVPR_09/``, or the files directly);
    ``trainval`` is TrainImages.txt. There is no download (it raises DataError)."""
    if download:
        raise no_download("mit67", OBTAIN)
    folder = find_mit67(root)
    return lambda official: read_mit67(folder, official, skip_corrupt)
