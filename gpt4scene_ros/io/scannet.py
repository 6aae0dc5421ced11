"""ScanNet scenes as exported by ScanNet's SensReader: ``color/``, ``depth/``, ``pose/``, ``intrinsic/``.

A scene folder (named by its scene id, e.g. ``scene0000_00``) holds::

    color/N.jpg                      1296x968 colour
    depth/N.png                      640x480 uint16 millimetres, 0 = invalid
    pose/N.txt                       4x4 camera-to-world (optical axes); -inf/NaN where tracking was lost
    intrinsic/intrinsic_depth.txt    4x4 (the 3x3 pinhole matrix in its top-left block)
    intrinsic/intrinsic_color.txt    4x4 (not needed: the colour is resized to the depth size)
    <scene>.txt                      ScanNet's meta file; its ``axisAlignment`` line aligns the scene

The export's colour and depth share the viewpoint but not the size, so the colour
is resized to the depth size and frames carry the depth intrinsics. Where the
scene has an ``axisAlignment``, poses are returned in the aligned frame (the frame
of ScanNet's annotations and of the benchmarks' boxes). :class:`ResizedColorSequence`
is shared with the OpenEQA episodes, which use the same export.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import cv2
import numpy as np

from gpt4scene_ros.common.frames import CameraIntrinsics, check_rigid_transform
from gpt4scene_ros.io.folders import (
    FolderSequence,
    _first_depth_size,
    _FrameRecord,
    _list_names,
    _read_image,
    read_pose_file,
)
from gpt4scene_ros.io.sequence import FrameError, SequenceError

logger = logging.getLogger(__name__)

LAYOUT_SCANNET = 'scannet'
SCANNET_SUBFOLDERS = ('color', 'depth', 'pose', 'intrinsic')
SCANNET_DEPTH_SCALE_PER_M = 1000.0
SCANNET_INVALID_DEPTH = (0,)
DEPTH_INTRINSICS_FILE = 'intrinsic_depth.txt'
AXIS_ALIGNMENT_FIELD = 'axisAlignment'

_NUMBERED = re.compile(r'^(\d+)\.(jpg|png|txt)$')
_SUFFIXES = {'color': ('jpg', 'png'), 'depth': ('png',), 'pose': ('txt',)}
_SCENE_ID = re.compile(r'^(scene\d{4}_\d{2})(?:\.txt|_vh_clean_2\.ply|\.aggregation\.json)$')


def is_scannet_folder(root: Path) -> bool:
    """Whether ``root`` looks like a ScanNet export: at least two of its four subfolders (the rest are reported
    missing when it is opened)."""
    return sum((root / name).is_dir() for name in SCANNET_SUBFOLDERS) >= 2


def scene_name(root: Path) -> str:
    """The scene id its files are named by: the folder's name, or else the one ScanNet scene id
    (``sceneXXXX_XX``) that the meta, mesh or aggregation files in it carry."""
    if any((root / f'{root.name}{suffix}').is_file() for suffix in ('.txt', '_vh_clean_2.ply', '.aggregation.json')):
        return root.name
    ids = {match.group(1) for name in _list_names(root) if (match := _SCENE_ID.match(name))}
    return ids.pop() if len(ids) == 1 else root.name


def read_axis_alignment(path: Path) -> np.ndarray | None:
    """The ``axisAlignment`` of ScanNet's meta file ``path`` as a rigid 4x4 (row-major in the file), None when the
    file or the line is absent; ValueError naming the file and the field when it is malformed."""
    if not path.is_file():
        return None
    try:
        lines = path.read_text(encoding='utf-8').splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f'{path}: meta file is unreadable: {error}') from None
    for line in lines:
        key, _, value = line.partition('=')
        if key.strip() != AXIS_ALIGNMENT_FIELD:
            continue
        try:
            numbers = np.array(value.split(), dtype=np.float64)
        except ValueError:
            raise ValueError(f'{path}: {AXIS_ALIGNMENT_FIELD} has a non-numeric value: {value.strip()!r}') from None
        if numbers.size != 16:
            raise ValueError(f'{path}: {AXIS_ALIGNMENT_FIELD} must be 16 numbers (a 4x4 matrix), got {numbers.size}')
        return check_rigid_transform(numbers.reshape(4, 4), name=f'{path}: {AXIS_ALIGNMENT_FIELD}')
    return None


def read_intrinsics_file(path: Path, width: int, height: int) -> CameraIntrinsics:
    """Pinhole intrinsics from a 4x4 (or 3x3) matrix file; SequenceError naming the file when missing or malformed."""
    if not path.is_file():
        raise SequenceError(f'{path}: camera intrinsics file is missing')
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # loadtxt warns on an empty file; the shape check reports it
            matrix = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as error:
        raise SequenceError(f'{path}: malformed camera intrinsics, expected a 4x4 matrix as text: {error}') from None
    if matrix.shape not in ((4, 4), (3, 3)):
        raise SequenceError(f'{path}: malformed camera intrinsics, expected a 4x4 matrix, got shape {matrix.shape}')
    try:
        return CameraIntrinsics.from_matrix(matrix[:3, :3], width, height)
    except ValueError as error:
        raise SequenceError(f'{path}: malformed camera intrinsics: {error}') from None


LOST_TRACKING = 'pose is -inf/NaN: the recording lost tracking at this frame, it has no pose'
"""What a -inf/NaN pose means in ScanNet exports and OpenEQA episodes (:func:`read_pose_file`'s ``non_finite``)."""


class ResizedColorSequence(FolderSequence):
    """A folder sequence whose colour images may be larger than its depth images but share their viewpoint:
    the colour is resized (area interpolation) to the depth size, and the frames carry the depth intrinsics."""

    def _load_color(self, record: _FrameRecord, depth_shape: tuple[int, int]) -> np.ndarray:
        path = record.color_path
        if path is None:
            raise FrameError(self._missing_color_message(record))
        bgr = _read_image(path, cv2.IMREAD_COLOR, 'colour')
        if bgr.shape[:2] != depth_shape:
            bgr = cv2.resize(bgr, (depth_shape[1], depth_shape[0]), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class ScanNetSequence(ResizedColorSequence):
    """A ScanNet export (module docstring). Frames are the depth images sorted by their number ``N`` (the
    frame's ``index``); frame ``i`` has time ``i / frame_rate_hz`` (the export stores no timestamps).

    ``axis_alignment`` is the scene's 4x4 ``axisAlignment`` (identity when the meta file has none); poses are
    ``axis_alignment @ pose``. ``intrinsic_color.txt`` is not read: the colour is resized to the depth size.
    """

    layout = LAYOUT_SCANNET

    def __init__(self, root: Path, frame_rate_hz: float = 30.0) -> None:
        for name in SCANNET_SUBFOLDERS:
            if not (root / name).is_dir():
                raise SequenceError(f'{root / name}: ScanNet export has no {name}/ subfolder')
        files: dict[str, dict[int, str]] = {'color': {}, 'depth': {}, 'pose': {}}
        for folder, numbered in files.items():
            for name in sorted(_list_names(root / folder)):
                match = _NUMBERED.match(name)
                if match and match.group(2) in _SUFFIXES[folder]:
                    numbered.setdefault(int(match.group(1)), name)
        depth_numbers = sorted(files['depth'])
        if not depth_numbers:
            raise SequenceError(f'{root / "depth"}: ScanNet export has no frames (no N.png depth images)')

        records: list[_FrameRecord] = []
        self._pose_paths: list[Path] = []
        for position, number in enumerate(depth_numbers):
            color_name = files['color'].get(number)
            records.append(
                _FrameRecord(
                    number,
                    position / frame_rate_hz,
                    root / 'color' / color_name if color_name else None,
                    root / 'depth' / files['depth'][number],
                )
            )
            self._pose_paths.append(root / 'pose' / files['pose'].get(number, f'{number}.txt'))

        width_px, height_px = _first_depth_size(root, [r.depth_path for r in records])
        intrinsics = read_intrinsics_file(root / 'intrinsic' / DEPTH_INTRINSICS_FILE, width_px, height_px)
        meta = root / f'{scene_name(root)}.txt'
        try:
            alignment = read_axis_alignment(meta)
        except ValueError as error:
            raise SequenceError(str(error)) from None
        self.axis_alignment = np.eye(4) if alignment is None else alignment
        if alignment is None:
            logger.info('%s: no %s line, poses stay in the scan frame', meta, AXIS_ALIGNMENT_FIELD)
        super().__init__(root, intrinsics, records, SCANNET_DEPTH_SCALE_PER_M, SCANNET_INVALID_DEPTH)

    def _missing_color_message(self, record: _FrameRecord) -> str:
        return f'{self.root / "color" / record.depth_path.stem}.jpg: colour image is missing'

    def _load_pose(self, i: int, record: _FrameRecord) -> np.ndarray:
        return self.axis_alignment @ read_pose_file(self._pose_paths[i], LOST_TRACKING)
