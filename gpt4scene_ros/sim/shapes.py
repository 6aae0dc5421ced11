"""Triangle-mesh primitives of the synthetic scene: boxes, cylinders, spheres, quads, and turning them.

A mesh (a "part") is ``(vertices, triangles)``: vertices float64 Nx3, triangles
int32 Mx3 with outward winding. Footprints are axis-aligned rectangles
``(x_min, y_min, x_max, y_max)`` on the floor. The names with a leading
underscore are internal to ``gpt4scene_ros.sim``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

_Part = tuple[np.ndarray, np.ndarray]
"""A mesh: vertices (float64 Nx3) and triangles (int32 Mx3)."""
_Rect = tuple[float, float, float, float]
"""A footprint: (x_min, y_min, x_max, y_max)."""

_BOX_QUADS = ((0, 4, 6, 2), (1, 3, 7, 5), (0, 1, 5, 4), (2, 6, 7, 3), (0, 2, 3, 1), (4, 5, 7, 6))


def _box(lo: npt.ArrayLike, hi: npt.ArrayLike) -> _Part:
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    corners = np.array([[(hi if (k >> axis) & 1 else lo)[axis] for axis in range(3)] for k in range(8)])
    triangles = [tri for a, b, c, d in _BOX_QUADS for tri in ((a, b, c), (a, c, d))]
    return corners, np.array(triangles, dtype=np.int32)


def _cylinder(x: float, y: float, z0: float, z1: float, radius: float, segments: int = 32) -> _Part:
    angles = 2 * np.pi * np.arange(segments) / segments
    ring = np.stack([x + radius * np.cos(angles), y + radius * np.sin(angles)], axis=1)
    vertices = np.concatenate(
        [
            np.column_stack([ring, np.full(segments, z0)]),
            np.column_stack([ring, np.full(segments, z1)]),
            [[x, y, z0], [x, y, z1]],
        ]
    )
    k = np.arange(segments)
    k1 = (k + 1) % segments
    bottom, top = 2 * segments, 2 * segments + 1
    triangles = np.concatenate(
        [
            np.stack([k, k1, k1 + segments], axis=1),
            np.stack([k, k1 + segments, k + segments], axis=1),
            np.stack([np.full(segments, bottom), k1, k], axis=1),
            np.stack([np.full(segments, top), k + segments, k1 + segments], axis=1),
        ]
    )
    return vertices, triangles.astype(np.int32)


def _sphere(center: npt.ArrayLike, radius: float, rings: int = 16, segments: int = 32) -> _Part:
    """UV sphere; ``rings`` even and ``segments`` a multiple of 4 keep its bounds exact."""
    polar = np.pi * np.arange(1, rings) / rings
    azimuth = 2 * np.pi * np.arange(segments) / segments
    p, a = np.meshgrid(polar, azimuth, indexing='ij')
    ring_points = np.stack([np.sin(p) * np.cos(a), np.sin(p) * np.sin(a), np.cos(p)], axis=-1).reshape(-1, 3)
    unit = np.concatenate([[[0.0, 0.0, 1.0]], ring_points, [[0.0, 0.0, -1.0]]])
    north, south = 0, len(unit) - 1

    def vid(ring: int, seg: int) -> int:
        return 1 + ring * segments + seg % segments

    triangles = []
    for s in range(segments):
        triangles.append((north, vid(0, s), vid(0, s + 1)))
        triangles.append((south, vid(rings - 2, s + 1), vid(rings - 2, s)))
        for r in range(rings - 2):
            triangles.append((vid(r, s), vid(r + 1, s), vid(r + 1, s + 1)))
            triangles.append((vid(r, s), vid(r + 1, s + 1), vid(r, s + 1)))
    return np.asarray(center, dtype=np.float64) + radius * unit, np.array(triangles, dtype=np.int32)


def _merge(parts: Iterable[_Part]) -> _Part:
    vertices, triangles, offset = [], [], 0
    for part_vertices, part_triangles in parts:
        vertices.append(part_vertices)
        triangles.append(part_triangles + offset)
        offset += len(part_vertices)
    return np.concatenate(vertices), np.concatenate(triangles).astype(np.int32)


def _quad(p0: npt.ArrayLike, p1: npt.ArrayLike, p2: npt.ArrayLike, p3: npt.ArrayLike) -> _Part:
    return np.array([p0, p1, p2, p3], dtype=np.float64), np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int32)


def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _turned(parts: list[_Part], yaw: float, center_xy: Sequence[float] | np.ndarray) -> list[_Part]:
    """``parts`` turned by ``yaw`` about the vertical through ``center_xy``."""
    if yaw == 0.0:
        return parts
    pivot = np.array([center_xy[0], center_xy[1], 0.0])
    R = _yaw_matrix(yaw)
    return [((vertices - pivot) @ R.T + pivot, triangles) for vertices, triangles in parts]


def _footprint_rect(parts: Iterable[_Part]) -> _Rect:
    vertices = np.concatenate([v for v, _ in parts])
    return _rect_of(vertices.min(0), vertices.max(0))


def _rect_of(lo: Sequence[float] | np.ndarray, hi: Sequence[float] | np.ndarray) -> _Rect:
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
