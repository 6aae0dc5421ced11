"""Voxel keys of the map's surface: packing, lookup, and one point per surface voxel.

A voxel's key is ``rint(point / voxel_size)``: Open3D puts surface points at
multiples of the voxel size, so rounding (not flooring) keeps a flat surface
in one layer of keys. The three integer indices are packed into one sortable
int64 (:func:`pack_keys`), so sets of voxels are sorted arrays and
neighbours are found by adding a packed offset (:func:`packed_offset`) and
searching (:func:`lookup`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gpt4scene_ros.objects.segmentation.colors import lab_colors

_KEY_OFFSET = 1 << 20
_KEY_BITS = 21
_NEIGHBOUR_OFFSETS = [
    (dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1) if (dx, dy, dz) > (0, 0, 0)
]
"""Half of the 26-neighbourhood: each edge once."""


def pack_keys(keys: np.ndarray) -> np.ndarray:
    """Integer voxel indices (Nx3, each within +-2^20) as one sortable int64 per voxel."""
    keys = np.asarray(keys, dtype=np.int64).reshape(-1, 3) + _KEY_OFFSET
    return (keys[:, 0] << (2 * _KEY_BITS)) | (keys[:, 1] << _KEY_BITS) | keys[:, 2]


def unpack_keys(packed: np.ndarray) -> np.ndarray:
    """The Nx3 int64 voxel indices of packed keys (the inverse of :func:`pack_keys`)."""
    packed = np.asarray(packed, dtype=np.int64)
    mask = (1 << _KEY_BITS) - 1
    return (
        np.stack([(packed >> (2 * _KEY_BITS)) & mask, (packed >> _KEY_BITS) & mask, packed & mask], axis=1)
        - _KEY_OFFSET
    )


def packed_offset(dx: int, dy: int, dz: int) -> int:
    """What to add to a packed key to step by (dx, dy, dz) voxels (for keys not at the edge of the range)."""
    return (dx << (2 * _KEY_BITS)) + (dy << _KEY_BITS) + dz


def lookup(sorted_keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Index of each of ``wanted`` in ``sorted_keys`` (packed, ascending), -1 where absent."""
    if len(sorted_keys) == 0:
        return np.full(len(wanted), -1, np.int64)
    position = np.searchsorted(sorted_keys, wanted)
    position[position >= len(sorted_keys)] = 0
    return np.where(sorted_keys[position] == wanted, position, -1)


@dataclass(frozen=True, eq=False)
class SurfaceVoxels:
    """One point per surface voxel, sorted by packed key, with the voxel adjacency graph."""

    keys: np.ndarray
    """Packed voxel keys (:func:`pack_keys`), ascending."""
    points: np.ndarray
    """Nx3 float64 map coordinates (mean of the voxel's surface points)."""
    colors: np.ndarray
    """Nx3 uint8 RGB."""
    normals: np.ndarray
    """Nx3 float64 unit normals (from the TSDF gradient)."""
    edges: np.ndarray
    """Mx2 int64: pairs of 26-adjacent voxels, each pair once."""
    voxel_size_m: float
    lab: np.ndarray | None = field(repr=False, default=None)
    """Nx3 float32 CIE Lab of ``colors`` (:func:`gpt4scene_ros.objects.segmentation.colors.lab_colors`)."""

    def __len__(self) -> int:
        return len(self.keys)


def surface_voxels(points: np.ndarray, colors: np.ndarray, normals: np.ndarray, voxel_size_m: float) -> SurfaceVoxels:
    """Merge the map's surface points (Nx3, colours Nx3 uint8, normals Nx3) into one per voxel."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    normals = np.asarray(normals, dtype=np.float64).reshape(-1, 3)
    if not (len(points) == len(colors) == len(normals)):
        raise ValueError(f'surface_voxels: {len(points)} points, {len(colors)} colours, {len(normals)} normals')
    finite = np.all(np.isfinite(points), axis=1) & np.all(np.isfinite(normals), axis=1)
    points, colors, normals = points[finite], colors[finite], normals[finite]
    packed = pack_keys(np.rint(points / voxel_size_m))
    keys, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)

    def mean(values: np.ndarray) -> np.ndarray:
        return (
            np.stack(
                [np.bincount(inverse, weights=values[:, c], minlength=len(keys)) for c in range(values.shape[1])],
                axis=1,
            )
            / np.maximum(counts, 1)[:, None]
        )

    mean_points = mean(points)
    mean_colors = np.clip(np.rint(mean(colors.astype(np.float64))), 0, 255).astype(np.uint8)
    mean_normals = mean(normals)
    length = np.linalg.norm(mean_normals, axis=1, keepdims=True)
    mean_normals = np.where(length > 1e-9, mean_normals / np.maximum(length, 1e-12), [0.0, 0.0, 1.0])
    edge_lists: list[np.ndarray] = []
    for offset in _NEIGHBOUR_OFFSETS:
        found = lookup(keys, keys + packed_offset(*offset))
        here = np.flatnonzero(found >= 0)
        edge_lists.append(np.stack([here, found[here]], axis=1))
    edges = np.concatenate(edge_lists) if edge_lists else np.zeros((0, 2), np.int64)
    return SurfaceVoxels(
        keys, mean_points, mean_colors, mean_normals, edges.astype(np.int64), voxel_size_m, lab_colors(mean_colors)
    )
