"""Downloading archives through torchvision's downloader, with moeheads errors."""

from __future__ import annotations

from pathlib import Path

from moeheads.errors import DataError


def fetch_archive(name: str, url: str, root: Path, filename: str, md5: str | None = None) -> None:
    """Download ``url`` into ``root`` and extract it there, verifying ``md5`` when given.

    Raises:
        DataError: Naming the dataset and the URL when the download or extraction fails.
    """
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        download_and_extract_archive(url, str(root), filename=filename, md5=md5)
    except Exception as error:  # network, disk and checksum errors all end the same way
        raise DataError(f"{name}: download of {url} into {root} failed: {error}") from error
