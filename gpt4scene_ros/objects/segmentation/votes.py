"""Image-segmentation boundaries voted into the map (:class:`BoundaryVotes`)."""

from __future__ import annotations

import cv2
import numpy as np
from skimage.segmentation import felzenszwalb

from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.objects.keyframes import FrameView
from gpt4scene_ros.objects.voxels import lookup, pack_keys


class BoundaryVotes:
    """Per voxel: in how many voted frames it was seen, and in how many an image-segment boundary crossed it.

    Each view given to :meth:`add_view` is segmented with Felzenszwalb's graph
    method (scikit-image) at the view's reduced depth resolution; every pixel with depth is
    back-projected into the map and counts the voxel it lands in as seen, and
    as a boundary when the pixel lies on a segment border. Two more keys half a
    voxel before and behind along the ray take the same vote, so depth noise
    that moves a surface across a voxel border does not split its votes. The
    memory is bounded: beyond ``max_voxels`` entries the least-seen half is
    dropped.
    """

    def __init__(self, config: InstanceConfig, voxel_size_m: float, max_voxels: int = 4_000_000) -> None:
        self.config = config
        self.voxel_size_m = float(voxel_size_m)
        self.max_voxels = int(max_voxels)
        self.frames = 0
        self.clear()

    def clear(self) -> None:
        self.keys = np.zeros(0, np.int64)
        self.seen = np.zeros(0, np.int32)
        self.boundary = np.zeros(0, np.int32)
        self.frames = 0

    def __len__(self) -> int:
        return len(self.keys)

    def state(self) -> dict:
        """The votes as arrays (saved with the map, so a reloaded map segments as before)."""
        return {'vote_keys': self.keys, 'vote_seen': self.seen, 'vote_boundary': self.boundary}

    def restore(self, arrays: dict) -> None:
        """Replace the votes by a :meth:`state`; ValueError (votes unchanged) for malformed arrays."""
        try:
            keys = np.asarray(arrays['vote_keys'])
            seen = np.asarray(arrays['vote_seen'])
            boundary = np.asarray(arrays['vote_boundary'])
        except KeyError as error:
            raise ValueError(f'boundary votes: {error} missing') from None
        if (
            not (keys.ndim == seen.ndim == boundary.ndim == 1 and len(keys) == len(seen) == len(boundary))
            or keys.dtype != np.int64
            or seen.dtype.kind != 'i'
            or boundary.dtype.kind != 'i'
        ):
            raise ValueError('boundary votes: keys, seen and boundary must be integer arrays of one length')
        if len(keys) and (np.any(np.diff(keys) <= 0) or np.any(boundary > seen) or np.any(boundary < 0)):
            raise ValueError('boundary votes: keys must ascend and 0 <= boundary <= seen')
        self.keys, self.seen, self.boundary = keys, seen.astype(np.int32), boundary.astype(np.int32)

    def add_view(self, view: FrameView) -> None:
        """Vote one :class:`gpt4scene_ros.objects.keyframes.FrameView` (colour, reduced depth, pose)."""
        seen, boundary = self._view_keys(view)
        if len(seen) == 0:
            return
        keys = np.concatenate([self.keys, seen])
        seen_votes = np.concatenate([self.seen, np.ones(len(seen), np.int32)])
        boundary_votes = np.concatenate([self.boundary, np.isin(seen, boundary, assume_unique=True).astype(np.int32)])
        merged, inverse = np.unique(keys, return_inverse=True)
        self.keys = merged
        self.seen = np.bincount(inverse, weights=seen_votes, minlength=len(merged)).astype(np.int32)
        self.boundary = np.bincount(inverse, weights=boundary_votes, minlength=len(merged)).astype(np.int32)
        self.frames += 1
        if len(self.keys) > self.max_voxels:
            keep = self.seen >= np.median(self.seen) + 1
            self.keys, self.seen, self.boundary = self.keys[keep], self.seen[keep], self.boundary[keep]

    def _view_keys(self, view: FrameView) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        height, width = view.depth_m.shape
        if height < 2 or width < 2:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        small = cv2.resize(view.color, (width, height), interpolation=cv2.INTER_AREA)
        segments = felzenszwalb(small, scale=cfg.vote_segment_scale, sigma=0.8, min_size=cfg.vote_segment_min_px)
        border = np.zeros(segments.shape, bool)
        horizontal = segments[:, 1:] != segments[:, :-1]
        vertical = segments[1:] != segments[:-1]
        border[:, 1:] |= horizontal
        border[:, :-1] |= horizontal
        border[1:] |= vertical
        border[:-1] |= vertical
        rows, cols, camera = view.pixel_rays()
        if len(rows) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        ray = camera / np.maximum(np.linalg.norm(camera, axis=1, keepdims=True), 1e-9)
        on_border = border[rows, cols]
        T = view.T_map_camera
        seen, crossed = [], []
        for shift in (-0.5, 0.0, 0.5):
            in_map = (camera + shift * self.voxel_size_m * ray) @ T[:3, :3].T + T[:3, 3]
            keys = pack_keys(np.rint(in_map / self.voxel_size_m))
            seen.append(keys)
            crossed.append(keys[on_border])
        return np.unique(np.concatenate(seen)), np.unique(np.concatenate(crossed))

    def boundary_fraction(self, keys: np.ndarray) -> np.ndarray:
        """Fraction of the voted frames seeing each voxel (packed keys) in which a boundary crossed it.

        0 for voxels seen in fewer than ``vote_min_frames`` frames (not enough evidence either way).
        """
        keys = np.asarray(keys, dtype=np.int64)
        if len(self.keys) == 0:
            return np.zeros(len(keys))
        index = lookup(self.keys, keys)
        seen = np.where(index >= 0, self.seen[np.maximum(index, 0)], 0)
        boundary = np.where(index >= 0, self.boundary[np.maximum(index, 0)], 0)
        return np.where(seen >= self.config.vote_min_frames, boundary / np.maximum(seen, 1), 0.0)
