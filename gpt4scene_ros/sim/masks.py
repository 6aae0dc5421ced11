"""SAM-like instance masks made from a generated sequence's true instance images.

A real mask model is wrong in known ways, and fusion must survive all of them: its numbers mean nothing from one
frame to the next; it misses objects in some frames, merges touching objects or splits one object in others;
it gives the floor and walls masks of their own; its borders are ragged (a few pixels short or spilling onto what
is behind). :func:`sam_like_masks` applies each of these, at rates set by :class:`MaskDegradation`, to one frame's
true instance image (``frame-XXXXXX.instance.png``); :func:`write_sam_like_masks` writes a sequence's masks as the
``precomputed`` mask source reads them (``frame-XXXXXX.mask.png``, 16-bit).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gpt4scene_ros.io.masks import MASK_SUFFIX


@dataclass(frozen=True)
class MaskDegradation:
    """Per object and frame: the chance of each error a mask model makes."""

    miss_rate: float = 0.1
    """No mask for the object."""
    merge_rate: float = 0.05
    """One mask with a touching object."""
    split_rate: float = 0.05
    """Two masks, cut across the object's longer side."""
    ragged_px: int = 2
    """Borders eroded or dilated by up to this many pixels."""
    structure_masks: bool = True
    """The floor and walls get masks (the lower and upper part of what no object covers)."""
    min_pixels: int = 40
    """Objects showing fewer pixels get no mask (a mask model's smallest)."""


CLEAN = MaskDegradation(0.0, 0.0, 0.0, 0, False, 40)
"""Perfect masks: only the per-frame numbering differs from the truth."""


def sam_like_masks(instance: np.ndarray, rng: np.random.Generator, degradation: MaskDegradation) -> np.ndarray:
    """One frame's uint16 label image from its true instance image (uint16, 0 = structure)."""
    d = degradation
    ids, sizes = np.unique(instance[instance > 0], return_counts=True)
    ids = ids[sizes >= d.min_pixels]
    sizes = sizes[sizes >= d.min_pixels]
    out = np.zeros(instance.shape, np.uint16)
    numbers = iter(rng.permutation(np.arange(1, 2 * len(ids) + 4)).tolist())
    number_of: dict[int, int] = {}
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    if d.structure_masks:
        rows = np.nonzero(instance == 0)[0]
        if len(rows):
            horizon = int(np.median(rows))
            lower = np.zeros(instance.shape, bool)
            lower[horizon:] = True
            out[(instance == 0) & lower] = next(numbers)
            out[(instance == 0) & ~lower] = next(numbers)
    # Largest first, so a small object on a large one keeps its own mask on top.
    for object_id in ids[np.argsort(-sizes)].tolist():
        if rng.random() < d.miss_rate:
            continue
        mask = (instance == object_id).astype(np.uint8)
        if d.ragged_px:
            grow = int(rng.integers(-d.ragged_px, d.ragged_px + 1))
            if grow > 0:
                mask = cv2.dilate(mask, kernel, iterations=grow)
            elif grow < 0:
                mask = cv2.erode(mask, kernel, iterations=-grow)
        if not mask.any():
            continue
        number = number_of.get(object_id)
        if number is None:
            number = next(numbers)
            if rng.random() < d.merge_rate:
                near = np.unique(instance[cv2.dilate(mask, kernel, iterations=2).astype(bool)])
                touching = [t for t in near.tolist() if t not in (0, object_id) and t in ids]
                if touching:
                    number_of[int(rng.choice(touching))] = number
        region = mask.astype(bool)
        out[region] = number
        if rng.random() < d.split_rate:
            rows, cols = np.nonzero(region)
            if len(rows) >= 2 * d.min_pixels:
                across = cols if np.ptp(cols) >= np.ptp(rows) else rows
                half = across > np.median(across)
                out[rows[half], cols[half]] = next(numbers)
    return out


def write_sam_like_masks(
    sequence_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    degradation: MaskDegradation = MaskDegradation(),
    seed: int = 0,
) -> int:
    """Write ``frame-XXXXXX.mask.png`` for every ``frame-XXXXXX.instance.png`` of a generated sequence; the count."""
    sequence_dir, out_dir = Path(sequence_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = 0
    for path in sorted(sequence_dir.glob('frame-*.instance.png')):
        match = re.fullmatch(r'(frame-\d{6})\.instance\.png', path.name)
        if match is None:
            continue
        instance = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if instance is None:
            raise OSError(f'cannot read {path}')
        masks = sam_like_masks(instance, rng, degradation)
        if not cv2.imwrite(str(out_dir / f'{match.group(1)}{MASK_SUFFIX}'), masks, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise OSError(f'cannot write masks into {out_dir}')
        written += 1
    return written
