"""OpenEQA episode histories as the benchmark's authors extract them: one folder of numbered frames.

An episode folder (``scannet-v0/<episode>`` or ``hm3d-v0/<episode>``) holds::

    NNNNNN-rgb.png                   colour (ScanNet: 1296x968; HM3D: the depth size)
    NNNNNN-depth.png                 uint16 depth, 0 = invalid (units by variant, below)
    NNNNNN.txt                       4x4 camera-to-world pose
    intrinsic_depth.txt              4x4 (the 3x3 pinhole matrix in its top-left block)
    intrinsic_color.txt              4x4 (not needed: the colour is resized to the depth size)

Two variants:
- ``scannet``: ScanNet's SensReader export: depth in millimetres, poses in the
  optical convention (x right, y down, z forward), -inf/NaN where tracking was lost.
- ``hm3d``: rendered by Habitat: depth scaled so that 65535 = 10 m (6553.5 per
  metre; 65535 itself, the range limit, is invalid), poses in the OpenGL camera
  convention (x right, y up, looking along -z), turned into the optical convention
  here. The world is Habitat's, y up: the map's gravity estimate finds the floor.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from gpt4scene_ros.io.folders import _first_depth_size, _FrameRecord, _list_names, read_pose_file
from gpt4scene_ros.io.scannet import DEPTH_INTRINSICS_FILE, LOST_TRACKING, ResizedColorSequence, read_intrinsics_file
from gpt4scene_ros.io.sequence import SequenceError

logger = logging.getLogger(__name__)

LAYOUT_OPENEQA = 'openeqa'
VARIANT_SCANNET = 'scannet'
VARIANT_HM3D = 'hm3d'
VARIANTS = (VARIANT_SCANNET, VARIANT_HM3D)
DEPTH_SCALE_PER_M = {VARIANT_SCANNET: 1000.0, VARIANT_HM3D: 65535 / 10.0}
INVALID_DEPTH = {VARIANT_SCANNET: (0,), VARIANT_HM3D: (0, 65535)}
T_OPENGL_OPTICAL = np.diag([1.0, -1.0, -1.0, 1.0])
"""Optical camera axes (x right, y down, z forward) in the OpenGL camera's (x right, y up, looking along -z)."""

_FRAME_FILE = re.compile(r'^(\d+)(-rgb\.png|-depth\.png|\.txt)$')


def is_openeqa_folder(root: Path) -> bool:
    """Whether ``root`` holds OpenEQA episode frames (``NNNNNN-rgb.png``)."""
    return root.is_dir() and any(name.endswith('-rgb.png') and _FRAME_FILE.match(name) for name in _list_names(root))


def episode_variant(root: Path) -> str | None:
    """``hm3d`` or ``scannet`` when the episode folder's name or its parent's says so (``hm3d-v0/<episode>``),
    else None."""
    for name in (root.name.lower(), root.parent.name.lower()):
        for variant in (VARIANT_HM3D, VARIANT_SCANNET):
            if variant in name:
                return variant
    return None


class OpenEqaEpisode(ResizedColorSequence):
    """An OpenEQA episode folder (module docstring); frames are the depth images sorted by number.

    The variant is ``variant`` when given; else the one the folder's or its parent's name contains
    (``hm3d`` before ``scannet``); else ``hm3d`` when ``intrinsic_color.txt`` equals ``intrinsic_depth.txt``
    (Habitat renders both images with one camera, ScanNet's colour camera differs), otherwise ``scannet``.
    Frame ``i`` has time ``i / frame_rate_hz`` (the episodes store no timestamps).
    """

    layout = LAYOUT_OPENEQA

    def __init__(self, root: Path, variant: str | None = None, frame_rate_hz: float = 30.0) -> None:
        if variant is not None and variant not in VARIANTS:
            raise ValueError(f'variant must be one of {VARIANTS} or None (detected), got {variant!r}')
        files: dict[str, dict[int, str]] = {'-rgb.png': {}, '-depth.png': {}, '.txt': {}}
        for name in _list_names(root):
            match = _FRAME_FILE.match(name)
            if match:
                files[match.group(2)][int(match.group(1))] = name
        depth_numbers = sorted(files['-depth.png'])
        if not depth_numbers:
            raise SequenceError(
                f'{root}: OpenEQA episode has no frames with depth (no NNNNNN-depth.png; an RGB-only extraction '
                f'cannot be mapped)'
            )
        records: list[_FrameRecord] = []
        self._pose_paths: list[Path] = []
        for position, number in enumerate(depth_numbers):
            color_name = files['-rgb.png'].get(number)
            depth_name = files['-depth.png'][number]
            records.append(
                _FrameRecord(
                    number, position / frame_rate_hz, root / color_name if color_name else None, root / depth_name
                )
            )
            self._pose_paths.append(root / files['.txt'].get(number, depth_name.replace('-depth.png', '.txt')))

        width_px, height_px = _first_depth_size(root, [r.depth_path for r in records])
        intrinsics = read_intrinsics_file(root / DEPTH_INTRINSICS_FILE, width_px, height_px)
        self.variant = variant or episode_variant(root) or self._variant_from_intrinsics(root)
        super().__init__(root, intrinsics, records, DEPTH_SCALE_PER_M[self.variant], INVALID_DEPTH[self.variant])

    @staticmethod
    def _variant_from_intrinsics(root: Path) -> str:
        color_file, depth_file = root / 'intrinsic_color.txt', root / DEPTH_INTRINSICS_FILE
        try:
            same = bool(np.array_equal(np.loadtxt(color_file, ndmin=2), np.loadtxt(depth_file, ndmin=2)))
        except (OSError, ValueError):
            same = False
        variant = VARIANT_HM3D if same else VARIANT_SCANNET
        logger.warning(
            '%s: the folder names no variant (hm3d or scannet); taking %s since the colour and depth intrinsics '
            '%s (pass the variant to be sure)',
            root,
            variant,
            'are equal' if same else 'differ',
        )
        return variant

    def _missing_color_message(self, record: _FrameRecord) -> str:
        return f'{str(record.depth_path).removesuffix("-depth.png")}-rgb.png: colour image is missing'

    def _load_pose(self, i: int, record: _FrameRecord) -> np.ndarray:
        pose = read_pose_file(self._pose_paths[i], LOST_TRACKING)
        return pose @ T_OPENGL_OPTICAL if self.variant == VARIANT_HM3D else pose
