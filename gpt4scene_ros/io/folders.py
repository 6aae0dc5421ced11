"""Recorded RGB-D sequences on disk: Microsoft 7-Scenes and TUM RGB-D layouts, and the folder sequence that
:mod:`gpt4scene_ros.io.scannet` (ScanNet exports) and :mod:`gpt4scene_ros.io.openeqa` (OpenEQA episodes) build on.

:func:`gpt4scene_ros.io.open.open_sequence` detects the layout. Opening is
lazy: it lists the folder, parses the small text files and reads the size of
one depth image; ``load(i)`` reads frame ``i``. Errors are those of
:mod:`gpt4scene_ros.io.sequence`.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gpt4scene_ros.common.frames import CameraIntrinsics, RgbdFrame, check_rigid_transform
from gpt4scene_ros.common.transforms import make_transform, matrix_from_quaternion, slerp
from gpt4scene_ros.io.sequence import FrameError, RgbdSequence, SequenceError, checked_position

logger = logging.getLogger(__name__)

LAYOUT_7SCENES = '7scenes'
LAYOUT_TUM = 'tum'

INTRINSICS_FILE = 'camera-intrinsics.txt'

SEVEN_SCENES_DEPTH_SCALE_PER_M = 1000.0
SEVEN_SCENES_INVALID_DEPTH = (0, 65535)
SEVEN_SCENES_DEFAULT_K = (585.0, 585.0, 320.0, 240.0)
"""fx, fy, cx, cy used when a 7-Scenes folder has no camera-intrinsics.txt."""

TUM_DEPTH_SCALE_PER_M = 5000.0
TUM_INVALID_DEPTH = (0,)
TUM_MAX_ASSOCIATION_GAP_S = 0.02
"""Largest |t_depth - t_rgb| for a depth image and a colour image to form a frame."""
TUM_MAX_GROUNDTRUTH_GAP_S = 0.1
"""Largest gap between the two groundtruth poses a frame's pose is interpolated from."""
TUM_QUATERNION_NORM_TOLERANCE = 1e-3
TUM_FREIBURG_K = {
    1: (517.3, 516.5, 318.6, 255.3),
    2: (520.9, 521.0, 325.1, 249.7),
    3: (535.4, 539.2, 320.1, 247.6),
}
TUM_DEFAULT_K = (525.0, 525.0, 319.5, 239.5)

_FRAME_FILE = re.compile(r'^frame-(\d+)\.(color\.jpg|color\.png|depth\.png|pose\.txt)$')
_FREIBURG_NAME = re.compile(r'(?<![a-z])(?:freiburg|fr)([123])(?![0-9])')


@dataclass(frozen=True)
class _FrameRecord:
    number: int  # RgbdFrame.index: the file's number (7-Scenes) or the position (TUM)
    timestamp_s: float
    color_path: Path | None
    depth_path: Path


class FolderSequence(RgbdSequence):
    """A sequence of image files in a folder (the layouts below); depth is read as the files hold it."""

    def __init__(
        self,
        root: Path,
        intrinsics: CameraIntrinsics,
        records: list[_FrameRecord],
        depth_scale_per_m: float,
        invalid_depth_values: tuple[int, ...],
    ) -> None:
        self.root = root
        self.intrinsics = intrinsics
        self.depth_scale_per_m = depth_scale_per_m
        self._records = records
        self._invalid_depth_values = invalid_depth_values

    def __len__(self) -> int:
        return len(self._records)

    def timestamp_s(self, i: int) -> float:
        return self._record(i).timestamp_s

    def load(self, i: int) -> RgbdFrame:
        record = self._record(i)
        depth = self._load_depth(record.depth_path)
        color = self._load_color(record, depth.shape)
        pose = self._load_pose(i, record)
        return RgbdFrame(
            index=record.number,
            timestamp_s=record.timestamp_s,
            color=color,
            depth=depth,
            T_world_camera=pose,
            depth_scale=self.depth_scale_per_m,
        )

    # -- per-layout -----------------------------------------------------------------

    def _load_pose(self, i: int, record: _FrameRecord) -> np.ndarray:
        raise NotImplementedError

    def _missing_color_message(self, record: _FrameRecord) -> str:
        return f'{record.depth_path}: no colour image for this depth image'

    # -- shared -----------------------------------------------------------------------

    def _record(self, i: int) -> _FrameRecord:
        return self._records[checked_position(i, len(self._records), self.root)]

    def _load_depth(self, path: Path) -> np.ndarray:
        raw = _read_image(path, cv2.IMREAD_UNCHANGED, 'depth')
        if raw.dtype != np.uint16 or raw.ndim != 2:
            raise FrameError(
                f'{path}: depth image must be single-channel 16-bit, got dtype {raw.dtype} with shape {raw.shape}'
            )
        expected = (self.intrinsics.height, self.intrinsics.width)
        if raw.shape != expected:
            raise FrameError(
                f'{path}: depth image is {raw.shape[1]}x{raw.shape[0]}, '
                f'but the sequence is {expected[1]}x{expected[0]} (size of its first depth image)'
            )
        invalid = np.isin(raw, self._invalid_depth_values)
        if invalid.any():
            raw[invalid] = 0
        return raw

    def _load_color(self, record: _FrameRecord, depth_shape: tuple[int, int]) -> np.ndarray:
        path = record.color_path
        if path is None:
            raise FrameError(self._missing_color_message(record))
        bgr = _read_image(path, cv2.IMREAD_COLOR, 'colour')
        if bgr.shape[:2] != depth_shape:
            raise FrameError(
                f'{path}: colour image is {bgr.shape[1]}x{bgr.shape[0]} but its depth image '
                f'{record.depth_path.name} is {depth_shape[1]}x{depth_shape[0]}'
            )
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class SevenScenesSequence(FolderSequence):
    """Microsoft 7-Scenes layout: ``frame-XXXXXX.{color.jpg,depth.png,pose.txt}``.

    Frames are the sorted file numbers having a depth image; frame ``i`` has
    time ``i / frame_rate_hz`` (the layout stores no timestamps).
    """

    layout = LAYOUT_7SCENES

    def __init__(self, root: Path, frame_rate_hz: float = 30.0) -> None:
        files: dict[str, dict[int, str]] = {'color.jpg': {}, 'color.png': {}, 'depth.png': {}, 'pose.txt': {}}
        for name in _list_names(root):
            match = _FRAME_FILE.match(name)
            if match:
                files[match.group(2)][int(match.group(1))] = name
        depth_numbers = sorted(files['depth.png'])
        if not depth_numbers:
            raise SequenceError(f'{root}: 7-Scenes layout has no frames (no frame-XXXXXX.depth.png files)')

        records: list[_FrameRecord] = []
        self._pose_paths: list[Path] = []
        for position, number in enumerate(depth_numbers):
            depth_name = files['depth.png'][number]
            color_name = files['color.jpg'].get(number) or files['color.png'].get(number)
            pose_name = files['pose.txt'].get(number, depth_name.replace('.depth.png', '.pose.txt'))
            records.append(
                _FrameRecord(
                    number, position / frame_rate_hz, root / color_name if color_name else None, root / depth_name
                )
            )
            self._pose_paths.append(root / pose_name)

        width_px, height_px = _first_depth_size(root, [r.depth_path for r in records])
        intrinsics = _read_intrinsics(root, width_px, height_px, SEVEN_SCENES_DEFAULT_K, '7-Scenes nominal')
        super().__init__(root, intrinsics, records, SEVEN_SCENES_DEPTH_SCALE_PER_M, SEVEN_SCENES_INVALID_DEPTH)

    def _missing_color_message(self, record: _FrameRecord) -> str:
        stem = record.depth_path.name[: -len('.depth.png')]
        return f'{self.root / stem}.color.jpg: colour image is missing (no .color.jpg or .color.png)'

    def _load_pose(self, i: int, record: _FrameRecord) -> np.ndarray:
        return read_pose_file(self._pose_paths[i])


class TumSequence(FolderSequence):
    """TUM RGB-D layout: ``rgb.txt``, ``depth.txt``, ``groundtruth.txt``.

    Each depth image is paired with the nearest colour image within
    ``TUM_MAX_ASSOCIATION_GAP_S`` (unmatched depth images are dropped; one
    colour image may serve two depth images). The pose is the groundtruth
    interpolated at the depth timestamp (linear translation, slerp rotation).
    """

    layout = LAYOUT_TUM

    def __init__(self, root: Path) -> None:
        rgb = _read_tum_list(root / 'rgb.txt', 2)
        depth = _read_tum_list(root / 'depth.txt', 2)
        groundtruth_file = root / 'groundtruth.txt'
        if not groundtruth_file.is_file():
            raise SequenceError(f'{groundtruth_file}: TUM layout needs a groundtruth.txt with the camera poses')
        groundtruth = _read_tum_list(groundtruth_file, 8)
        if not groundtruth:
            raise SequenceError(f'{groundtruth_file}: no poses')

        rgb.sort(key=lambda entry: entry[1])
        rgb_times = [entry[1] for entry in rgb]
        records: list[_FrameRecord] = []
        for _, t_depth, fields in sorted(depth, key=lambda entry: entry[1]):
            match = _nearest(rgb_times, t_depth)
            if match is None or abs(rgb_times[match] - t_depth) > TUM_MAX_ASSOCIATION_GAP_S:
                continue
            records.append(_FrameRecord(len(records), t_depth, root / rgb[match][2][0], root / fields[0]))
        dropped = len(depth) - len(records)
        if dropped:
            logger.info(
                '%s: dropped %d of %d depth images with no colour image within %.3f s',
                root,
                dropped,
                len(depth),
                TUM_MAX_ASSOCIATION_GAP_S,
            )
        if not records:
            raise SequenceError(
                f'{root}: TUM layout has no frames ({len(depth)} depth images, {len(rgb)} colour '
                f'images, none within {TUM_MAX_ASSOCIATION_GAP_S} s of each other)'
            )

        groundtruth.sort(key=lambda entry: entry[1])
        self._gt_lines = [entry[0] for entry in groundtruth]
        self._gt_times = [entry[1] for entry in groundtruth]
        self._gt_values = np.array([[float(v) for v in entry[2]] for entry in groundtruth], dtype=np.float64)
        self._gt_file = groundtruth_file

        width_px, height_px = _first_depth_size(root, [r.depth_path for r in records])
        freiburg = _FREIBURG_NAME.search(root.name.lower())
        if freiburg:
            default_k, default_name = TUM_FREIBURG_K[int(freiburg.group(1))], f'TUM freiburg{freiburg.group(1)}'
        else:
            default_k, default_name = TUM_DEFAULT_K, 'TUM default (folder name names no freiburg camera)'
        intrinsics = _read_intrinsics(root, width_px, height_px, default_k, default_name, warn=freiburg is None)
        super().__init__(root, intrinsics, records, TUM_DEPTH_SCALE_PER_M, TUM_INVALID_DEPTH)

    def _load_pose(self, i: int, record: _FrameRecord) -> np.ndarray:
        t = record.timestamp_s
        times = self._gt_times
        if t < times[0] or t > times[-1]:
            raise FrameError(
                f'{self._gt_file}: frame {i} ({record.depth_path.name}, t={t:.6f}) is outside the '
                f'groundtruth time range [{times[0]:.6f}, {times[-1]:.6f}]'
            )
        after = bisect.bisect_left(times, t)
        if times[after] == t:
            before = after
        else:
            before = after - 1
            gap = times[after] - times[before]
            if gap > TUM_MAX_GROUNDTRUTH_GAP_S:
                raise FrameError(
                    f'{self._gt_file}: frame {i} ({record.depth_path.name}, t={t:.6f}) falls in a '
                    f'{gap:.3f} s gap of the groundtruth (lines {self._gt_lines[before]} and '
                    f'{self._gt_lines[after]}; at most {TUM_MAX_GROUNDTRUTH_GAP_S} s)'
                )
        q0 = self._unit_quaternion(before)
        t0 = self._gt_values[before, :3]
        if after == before:
            translation, q = t0, q0
        else:
            alpha = (t - times[before]) / (times[after] - times[before])
            q1 = self._unit_quaternion(after)
            t1 = self._gt_values[after, :3]
            translation = (1.0 - alpha) * t0 + alpha * t1
            q = slerp(q0, q1, alpha)
        name = f'{self._gt_file}: pose of frame {i}'
        try:
            rotation = matrix_from_quaternion(q)
        except ValueError as error:
            raise FrameError(f'{name}: {error}') from None
        try:
            return check_rigid_transform(make_transform(rotation, translation), name=name)
        except ValueError as error:
            raise FrameError(str(error)) from None

    def _unit_quaternion(self, row: int) -> np.ndarray:
        """Return the groundtruth quaternion (x, y, z, w) of ``row``, normalised; FrameError if not near unit."""
        q = self._gt_values[row, 3:]
        line = self._gt_lines[row]
        if not np.all(np.isfinite(self._gt_values[row])):
            raise FrameError(f'{self._gt_file}: line {line} has NaN or infinite values')
        norm = float(np.linalg.norm(q))
        if abs(norm - 1.0) > TUM_QUATERNION_NORM_TOLERANCE:
            raise FrameError(
                f'{self._gt_file}: line {line} has a quaternion of norm {norm:.6g}; '
                f'a rotation needs norm 1 (tolerance {TUM_QUATERNION_NORM_TOLERANCE})'
            )
        return q / norm


def open_folder(root: Path, frame_rate_hz: float = 30.0) -> FolderSequence:
    """The TUM or 7-Scenes sequence in folder ``root``, its layout detected; SequenceError when it is neither
    (:func:`gpt4scene_ros.io.open.open_sequence` tries the ScanNet and OpenEQA layouts first)."""
    if not root.is_dir():
        raise SequenceError(f'{root}: is a file, neither a sequence folder nor a rosbag2 bag (.mcap, .db3)')
    if (root / 'rgb.txt').is_file() and (root / 'depth.txt').is_file():
        return TumSequence(root)
    if any(_FRAME_FILE.match(name) for name in _list_names(root)):
        return SevenScenesSequence(root, float(frame_rate_hz))
    raise SequenceError(
        f'{root}: neither a TUM RGB-D folder (rgb.txt, depth.txt, groundtruth.txt), '
        f'a 7-Scenes folder (frame-XXXXXX.depth.png, .color.jpg, .pose.txt), a ScanNet export '
        f'(color/, depth/, pose/, intrinsic/), an OpenEQA episode (NNNNNN-rgb.png, -depth.png, .txt) '
        f'nor a rosbag2 bag (metadata.yaml)'
    )


# -- helpers --------------------------------------------------------------------------------


def read_pose_file(path: Path, non_finite: str = '') -> np.ndarray:
    """The 4x4 camera-to-world pose in ``path``; FrameError when missing, unreadable or not rigid. ``non_finite``:
    what a -inf/NaN pose means in this layout (ScanNet: lost tracking), said instead of the rigidity check's
    message."""
    if not path.is_file():
        raise FrameError(f'{path}: pose file is missing')
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # loadtxt warns on an empty file; the shape check reports it
            pose = np.loadtxt(path, dtype=np.float64)
    except (OSError, ValueError) as error:
        raise FrameError(f'{path}: pose file is unreadable: {error}') from None
    if non_finite and pose.shape == (4, 4) and not np.all(np.isfinite(pose)):
        raise FrameError(f'{path}: {non_finite}')
    try:
        return check_rigid_transform(pose, name=f'{path}: pose')
    except ValueError as error:
        raise FrameError(str(error)) from None


def _list_names(root: Path) -> list[str]:
    try:
        with os.scandir(root) as entries:
            return [entry.name for entry in entries]
    except OSError as error:
        raise SequenceError(f'{root}: cannot list the folder: {error}') from None


def _read_image(path: Path, flags: int, what: str) -> np.ndarray:
    if not path.is_file():
        raise FrameError(f'{path}: {what} image is missing')
    try:
        image = cv2.imread(str(path), flags)
    except cv2.error as error:
        raise FrameError(f'{path}: {what} image is unreadable: {error}') from None
    if image is None:
        raise FrameError(f'{path}: {what} image is unreadable (not a valid image file)')
    return image


def _first_depth_size(root: Path, depth_paths: list[Path]) -> tuple[int, int]:
    """(width, height) of the first readable depth image; the sequence's image size."""
    for path in depth_paths:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None
        if image is not None:
            return int(image.shape[1]), int(image.shape[0])
        logger.warning('%s: unreadable depth image, trying the next one for the image size', path)
    raise SequenceError(f'{root}: none of the {len(depth_paths)} depth images can be read')


def _read_intrinsics(
    root: Path,
    width: int,
    height: int,
    default_k: tuple[float, float, float, float],
    default_name: str,
    warn: bool = True,
) -> CameraIntrinsics:
    path = root / INTRINSICS_FILE
    if not path.exists():
        fx, fy, cx, cy = default_k
        log = logger.warning if warn else logger.info
        log(
            '%s: no %s, using %s intrinsics fx=%g fy=%g cx=%g cy=%g',
            root,
            INTRINSICS_FILE,
            default_name,
            fx,
            fy,
            cx,
            cy,
        )
        return CameraIntrinsics(width, height, fx, fy, cx, cy)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # loadtxt warns on an empty file; the shape check reports it
            K = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as error:
        raise SequenceError(f'{path}: malformed camera intrinsics, expected a 3x3 matrix as text: {error}') from None
    try:
        return CameraIntrinsics.from_matrix(K, width, height)
    except ValueError as error:
        raise SequenceError(f'{path}: malformed camera intrinsics: {error}') from None


def _read_tum_list(path: Path, fields: int) -> list[tuple[int, float, list[str]]]:
    """(line number, timestamp, remaining fields) of each data line of a TUM list file."""
    if not path.is_file():
        raise SequenceError(f'{path}: TUM list file is missing')
    try:
        text = path.read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as error:
        raise SequenceError(f'{path}: TUM list file is unreadable: {error}') from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        parts = line.split()
        if len(parts) != fields:
            raise SequenceError(f'{path}: line {number} has {len(parts)} fields, expected {fields}: {line!r}')
        try:
            timestamp = float(parts[0])
            if fields > 2:  # pose lines: every field is a number
                np.array(parts[1:], dtype=np.float64)
        except ValueError:
            raise SequenceError(f'{path}: line {number} has a non-numeric value: {line!r}') from None
        if not math.isfinite(timestamp):
            raise SequenceError(f'{path}: line {number} has a non-finite timestamp: {line!r}')
        entries.append((number, timestamp, parts[1:]))
    return entries


def _nearest(sorted_times: list[float], t: float) -> int | None:
    if not sorted_times:
        return None
    k = bisect.bisect_left(sorted_times, t)
    candidates = [j for j in (k - 1, k) if 0 <= j < len(sorted_times)]
    return min(candidates, key=lambda j: abs(sorted_times[j] - t))
