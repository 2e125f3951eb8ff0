"""The layout of the per-view parameter vector (11 values).

| index | name | value |
|---|---|---|
| 0 | `crop_top` | crop top / image height, in [0, 1] |
| 1 | `crop_left` | crop left / image width, in [0, 1] |
| 2 | `crop_height` | crop height / image height, in (0, 1] |
| 3 | `crop_width` | crop width / image width, in (0, 1] |
| 4 | `flip` | 1 if flipped horizontally, else 0 |
| 5 | `brightness` | brightness factor (1 without jitter) |
| 6 | `contrast` | contrast factor (1 without jitter) |
| 7 | `saturation` | saturation factor (1 without jitter) |
| 8 | `hue` | hue shift (0 without jitter) |
| 9 | `grayscale` | 1 if converted to grayscale, else 0 |
| 10 | `blur_sigma` | blur sigma in pixels (0 without blur) |

The order of the four jitter ops is kept beside the vector (``jitter_order``,
op ids :data:`JITTER_OPS`), since applying a view needs it.
"""

from __future__ import annotations

PARAM_NAMES: tuple[str, ...] = (
    "crop_top",
    "crop_left",
    "crop_height",
    "crop_width",
    "flip",
    "brightness",
    "contrast",
    "saturation",
    "hue",
    "grayscale",
    "blur_sigma",
)
"""Names of the parameter vector's entries, in order."""

NUM_PARAMS = len(PARAM_NAMES)
"""Length P of the parameter vector (11)."""

CROP = slice(0, 4)
FLIP = 4
JITTER = slice(5, 9)
BRIGHTNESS, CONTRAST, SATURATION, HUE = 5, 6, 7, 8
GRAYSCALE = 9
BLUR_SIGMA = 10

JITTER_OPS: tuple[str, ...] = ("brightness", "contrast", "saturation", "hue")
"""Jitter op ids: ``jitter_order[k]`` is the id of the op applied k-th."""

NEUTRAL_JITTER: tuple[float, ...] = (1.0, 1.0, 1.0, 0.0)
"""Jitter factors that leave an image unchanged (stored when jitter is not applied)."""

BINARY_PARAMS: tuple[int, ...] = (FLIP, GRAYSCALE)
"""Indices of the 0/1 entries."""
