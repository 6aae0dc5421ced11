"""Keyframes: a bounded pool of colour frames with pose and depth, what each one shows, and choosing N of them.

A frame's view of the instances is depth-tested by construction: every pixel
with depth is back-projected with the frame's pose and looks up the map voxel
it lands in (:class:`VoxelLabels`), so the label image is the visible part of
each instance in that frame. A frame whose back-projected depth mostly misses
the map's surface has a pose that does not fit the map (drift, a bad
odometry message): it is not used.

Selection (:func:`select_keyframes`): ``coverage`` picks frames greedily so
that every instance is visible in at least one keyframe, then spreads the
remaining picks out in pose space; ``uniform`` samples the pool evenly in time
(as GPT4Scene samples its frames). Either way the picks come ranked: the first n of them are that method's
choice of n, so one snapshot holds the most frames a query may ask for and a query for fewer takes the first
ranked (and shows them in time order).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gpt4scene_ros.common.frames import CameraIntrinsics, check_rigid_transform, depth_to_metres
from gpt4scene_ros.common.masks import FrameMasks, check_masks
from gpt4scene_ros.common.motion import pose_distances
from gpt4scene_ros.common.settings.instances import KEYFRAME_SELECTIONS
from gpt4scene_ros.objects.voxels import lookup, pack_keys, packed_offset


@dataclass(frozen=True, eq=False)
class FrameView:
    """A candidate keyframe: full colour image, reduced depth, pose."""

    index: int
    """The frame's number in its sequence (or the mapping node's count of integrated frames)."""
    stamp_s: float
    color: np.ndarray
    """HxWx3 uint8 RGB at the camera's resolution."""
    depth_m: np.ndarray
    """(H/step)x(W/step) float32 metres, 0 = none: every step-th pixel's depth."""
    depth_step: int
    intrinsics: CameraIntrinsics
    """Of the colour image."""
    T_map_camera: np.ndarray
    masks: FrameMasks | None = None
    """The frame's instance masks, where a mask source gave them."""

    def map_keys(self, voxel_size_m: float, step: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, packed voxel keys) of the reduced depth pixels sampled every ``step``, back-projected into
        the map. Fixed for a view: the sparse samples (``step`` >= 2) that every update labels are cached with
        the view (about 0.2 MB for a 640x480 camera), the dense ones are not."""
        key = (voxel_size_m, step)
        cache = self.__dict__.setdefault('_key_cache', {})
        if key in cache:
            return cache[key]
        rows, cols, camera = self.pixel_rays(step)
        T = self.T_map_camera
        keys = pack_keys(np.rint((camera @ T[:3, :3].T + T[:3, 3]) / voxel_size_m))
        result = (rows.astype(np.int16), cols.astype(np.int16), keys)
        if step >= 2:
            cache[key] = result
        return result

    def pixel_rays(self, step: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols) of the depth pixels sampled every ``step`` and their camera-frame points (Nx3)."""
        depth = self.depth_m[::step, ::step]
        with np.errstate(invalid='ignore'):
            rows, cols = np.nonzero(np.isfinite(depth) & (depth > 0))
        z = depth[rows, cols].astype(np.float64)
        full_step = self.depth_step * step
        offset = (self.depth_step - 1) // 2  # make_view keeps depth pixels offset, offset + step, ...
        u = cols * full_step + offset
        v = rows * full_step + offset
        k = self.intrinsics
        return rows, cols, np.stack([(u - k.cx) / k.fx * z, (v - k.cy) / k.fy * z, z], axis=1)


def make_view(
    color: npt.ArrayLike,
    depth: npt.ArrayLike,
    intrinsics: CameraIntrinsics,
    T_map_camera: npt.ArrayLike,
    stamp_s: float,
    index: int,
    view_width_px: int = 320,
    depth_scale: float = 1.0,
    masks: FrameMasks | None = None,
) -> FrameView:
    """A :class:`FrameView` keeping the colour image and every n-th depth pixel (n: width / view_width_px), in
    metres (``depth``: the sensor's uint16 with ``depth_scale``, or float metres), and the frame's masks
    (MaskError, a ValueError, when they do not fit the image)."""
    color = np.asarray(color)
    depth = np.asarray(depth)
    if color.dtype != np.uint8 or color.ndim != 3 or color.shape[2] != 3:
        raise ValueError(f'keyframe colour must be HxWx3 uint8, got {color.dtype} {color.shape}')
    if depth.shape != color.shape[:2] or depth.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(
            f'keyframe depth {depth.shape}, colour {color.shape} and intrinsics '
            f'{intrinsics.width}x{intrinsics.height} disagree'
        )
    step = max(1, int(round(intrinsics.width / view_width_px)))
    offset = (step - 1) // 2
    reduced = depth[offset::step, offset::step]
    reduced = (
        depth_to_metres(reduced, depth_scale)
        if reduced.dtype.kind in 'ui'
        else np.ascontiguousarray(reduced, dtype=np.float32)
    )
    return FrameView(
        int(index),
        float(stamp_s),
        color,
        reduced,
        step,
        intrinsics,
        check_rigid_transform(T_map_camera, 'T_map_camera').copy(),
        None if masks is None else dataclasses.replace(masks, labels=check_masks(masks.labels, color.shape[:2])),
    )


class VoxelLabels:
    """Packed voxel key -> label (instance id; 0 for a surface voxel of no instance), for back-projection.

    Each labelled voxel also claims its two neighbours along its normal's main
    axis where no other surface voxel is, so a depth pixel that lands a voxel
    in front of or behind the fused surface still finds it.
    """

    def __init__(self, keys: np.ndarray, labels: np.ndarray, normals: np.ndarray, voxel_size_m: float) -> None:
        keys = np.asarray(keys, dtype=np.int64)
        labels = np.asarray(labels, dtype=np.int64)
        self.voxel_size_m = float(voxel_size_m)
        axis = np.argmax(np.abs(np.asarray(normals).reshape(-1, 3)), axis=1) if len(keys) else np.zeros(0, int)
        steps = np.array([packed_offset(1, 0, 0), packed_offset(0, 1, 0), packed_offset(0, 0, 1)], dtype=np.int64)[axis]
        all_keys = np.concatenate([keys, keys + steps, keys - steps])
        all_labels = np.concatenate([labels, labels, labels])
        priority = np.concatenate([np.zeros(len(keys)), np.ones(2 * len(keys))])
        order = np.lexsort((priority, all_keys))
        all_keys, all_labels = all_keys[order], all_labels[order]
        first = np.r_[True, all_keys[1:] != all_keys[:-1]] if len(all_keys) else np.zeros(0, bool)
        self.keys, self.labels = all_keys[first], all_labels[first]

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(self, points_map: np.ndarray) -> np.ndarray:
        """Label at each map point (Nx3); -1 where no surface voxel is."""
        points_map = np.asarray(points_map).reshape(-1, 3)
        return self.lookup_keys(pack_keys(np.rint(points_map / self.voxel_size_m)))

    def lookup_keys(self, keys: np.ndarray) -> np.ndarray:
        """Label at each packed voxel key; -1 where no surface voxel is."""
        if len(self.keys) == 0:
            return np.full(len(keys), -1, np.int64)
        index = lookup(self.keys, keys)
        return np.where(index >= 0, self.labels[np.maximum(index, 0)], -1)


@dataclass(frozen=True, eq=False)
class ViewLabels:
    """What a view shows: instance id per sampled depth pixel, and how well its depth fits the map."""

    label_image: np.ndarray
    """Reduced-resolution int64 image: instance id, 0 = map surface of no instance, -1 = no depth / off the map."""
    step: int
    """Pixels of the colour image per label pixel along each axis."""
    surface_agreement: float
    """Fraction of the pixels with depth that land on the map's surface."""
    visible_px: dict
    """Instance id -> visible pixels, counted in colour-image pixels."""


def label_view(
    view: FrameView, labels: VoxelLabels, step: int = 1, depth_range_m: tuple[float, float] = (0.0, np.inf)
) -> ViewLabels:
    """Depth-tested labels of ``view`` at every ``step``-th reduced depth pixel; the surface agreement counts the
    pixels within ``depth_range_m`` only (the map holds nothing beyond the mapping range, so a view looking down a
    long room would otherwise seem not to fit it)."""
    rows, cols, keys = view.map_keys(labels.voxel_size_m, step)
    depth = view.depth_m[::step, ::step]
    image = np.full(depth.shape, -1, np.int64)
    if len(rows) == 0:
        return ViewLabels(image, view.depth_step * step, 0.0, {})
    found = labels.lookup_keys(keys)
    image[rows, cols] = found
    z = depth[rows, cols]
    in_range = found[(z >= depth_range_m[0]) & (z <= depth_range_m[1])]
    agreement = float(np.mean(in_range >= 0)) if len(in_range) else 0.0
    ids, counts = np.unique(found[found > 0], return_counts=True)
    area = (view.depth_step * step) ** 2
    return ViewLabels(
        image, view.depth_step * step, agreement, {int(i): int(c) * area for i, c in zip(ids.tolist(), counts.tolist())}
    )


class KeyframePool:
    """At most ``capacity`` candidate frames, kept spread evenly in time.

    When full, the frame closest in time to its neighbours goes (never the
    first or the last), so the pool covers the whole history at a falling rate.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise ValueError(f'keyframe pool capacity must be >= 2, got {capacity}')
        self.capacity = int(capacity)
        self.views: list[FrameView] = []

    def __len__(self) -> int:
        return len(self.views)

    def clear(self) -> None:
        self.views.clear()

    def add(self, view: FrameView) -> None:
        self.views.append(view)
        self.views.sort(key=lambda v: v.stamp_s)
        while len(self.views) > self.capacity:
            stamps = np.array([v.stamp_s for v in self.views])
            gaps = stamps[2:] - stamps[:-2]  # the span a middle frame's removal would leave
            del self.views[1 + int(np.argmin(gaps))]


def select_keyframes(
    views: Sequence[FrameView],
    visible: Sequence[dict[int, int] | None],
    count: int,
    method: str = 'coverage',
    min_visible_px: int = 400,
) -> list[int]:
    """Positions of ``count`` keyframes among ``views``, ranked: every prefix of the list is the method's choice
    of that many (coverage is greedy; uniform ranks an even spread so that each prefix is spread too).

    ``visible[k]`` is view k's {instance id: visible pixels}, or None for a
    view whose pose does not fit the map (never chosen by ``coverage``).
    """
    if method not in KEYFRAME_SELECTIONS:
        raise ValueError(f'keyframe selection {method!r}: expected one of {list(KEYFRAME_SELECTIONS)}')
    n = len(views)
    count = min(int(count), n)
    if count <= 0:
        return []
    if method == 'uniform':
        return spread_ranked(n, count)
    usable = [k for k in range(n) if visible[k] is not None]
    seen = [{i for i, px in (visible[k] or {}).items() if px >= min_visible_px} for k in range(n)]
    uncovered = set().union(*[seen[k] for k in usable]) if usable else set()
    chosen: list[int] = []
    while len(chosen) < count and uncovered:
        best, best_gain = None, (0, 0.0)
        for k in usable:
            if k in chosen:
                continue
            new = seen[k] & uncovered
            shown = visible[k]
            assert shown is not None  # usable views have their visibility
            gain = (len(new), sum(shown[i] for i in new))
            if gain > best_gain:
                best, best_gain = k, gain
        if best is None:
            break
        chosen.append(best)
        uncovered -= seen[best]
    # Spread the rest: farthest from the chosen ones in pose space.
    candidates = [k for k in usable if k not in chosen]
    if len(chosen) < count and candidates:
        if not chosen:
            chosen.append(candidates.pop(len(candidates) // 2))
        poses = np.stack([views[k].T_map_camera for k in candidates])
        nearest = np.full(len(candidates), np.inf)
        for c in chosen:
            nearest = np.minimum(nearest, pose_distances(poses, views[c].T_map_camera))
        while len(chosen) < count and np.isfinite(nearest).any():
            best = int(np.argmax(nearest))
            chosen.append(candidates[best])
            nearest = np.minimum(nearest, pose_distances(poses, views[candidates[best]].T_map_camera))
            nearest[best] = -np.inf
    return chosen


def spread_ranked(n: int, count: int) -> list[int]:
    """``count`` of the positions 0..n-1 evenly spread in time, ranked farthest-first: the first pick is the
    middle one, each next one the farthest (in time) from those before it, so any prefix is spread too."""
    positions = [n // 2] if count == 1 else sorted({int(round(k)) for k in np.linspace(0, n - 1, count)})
    ranked = [min(positions, key=lambda p: (abs(p - (n - 1) / 2.0), p))]
    while len(ranked) < len(positions):
        ranked.append(max((p for p in positions if p not in ranked), key=lambda p: min(abs(p - r) for r in ranked)))
    return ranked
