"""Instance masks of a frame, as a mask source gives them (a segmentation model, a folder, a ROS topic)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


class MaskError(ValueError):
    """A label image that cannot be fused (wrong size or type)."""


@dataclass(frozen=True, eq=False)
class FrameMasks:
    """One frame's instance masks, at the colour image's resolution."""

    labels: np.ndarray
    """HxW uint16: mask number per pixel, 0 = no mask."""
    names: Mapping[int, str] = field(default_factory=dict)
    """Mask number -> class label, where the source names them."""
    scores: Mapping[int, float] = field(default_factory=dict)


def check_masks(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``labels`` as an HxW uint16 image; MaskError naming what is wrong when it is not a label image of ``shape``."""
    image = np.asarray(labels)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != 2 or image.dtype not in (np.uint8, np.uint16):
        raise MaskError(f'a mask image must be single-channel 8- or 16-bit, got {image.dtype} with shape {image.shape}')
    if image.shape != tuple(shape):
        raise MaskError(
            f'mask image is {image.shape[1]}x{image.shape[0]} but the colour image is {shape[1]}x{shape[0]}'
        )
    return image.astype(np.uint16, copy=False)


def stamp_key(stamp_s: float) -> int:
    """A stamp to the millisecond: masks and their colour frame carry the same stamp, through float rounding."""
    return int(round(stamp_s * 1000.0))
