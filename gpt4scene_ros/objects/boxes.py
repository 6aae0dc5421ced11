"""Oriented 3D boxes in a z-up map frame: a centre, a size along the box's own axes and a yaw about z.

Objects stand upright in a gravity-aligned map, so a yaw is the only rotation
a box needs (as ``vision_msgs/BoundingBox3D`` with a pose turned about z).
:func:`fit_box` gives the tightest such box around points; :func:`box_iou` is
the volume intersection over union of two boxes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

BOX_PADDING_VOXELS = 0.25
"""How far (in voxels) :func:`fit_box` reaches beyond the outermost points."""
YAW_PREFERENCE = 0.10
""":func:`fit_box` keeps yaw 0 unless the turned footprint is this much (relative) smaller than the
axis-aligned one: box-like objects in a room whose walls run along x/y then keep stable, unturned boxes."""


@dataclass(frozen=True)
class OrientedBox:
    """``center`` (x, y, z), ``size`` (dx, dy, dz along the box's own axes), ``yaw`` about z (radians)."""

    center: tuple
    size: tuple
    yaw: float = 0.0

    def __post_init__(self) -> None:
        center = tuple(float(v) for v in np.asarray(self.center, dtype=np.float64).ravel())
        size = tuple(float(v) for v in np.asarray(self.size, dtype=np.float64).ravel())
        if len(center) != 3 or not all(math.isfinite(v) for v in center):
            raise ValueError(f'OrientedBox.center must be 3 finite numbers, got {self.center!r}')
        if len(size) != 3 or not all(math.isfinite(v) and v >= 0.0 for v in size):
            raise ValueError(f'OrientedBox.size must be 3 finite numbers >= 0, got {self.size!r}')
        if not math.isfinite(float(self.yaw)):
            raise ValueError(f'OrientedBox.yaw must be finite, got {self.yaw!r}')
        object.__setattr__(self, 'center', center)
        object.__setattr__(self, 'size', size)
        object.__setattr__(self, 'yaw', math.remainder(float(self.yaw), 2 * math.pi))

    @property
    def volume(self) -> float:
        return self.size[0] * self.size[1] * self.size[2]

    def rotation(self) -> np.ndarray:
        """3x3 rotation of the box's axes in the map frame."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    def to_local(self, points: npt.ArrayLike) -> np.ndarray:
        """Map points (Nx3) in the box's frame (origin at its centre)."""
        return (np.asarray(points, dtype=np.float64).reshape(-1, 3) - self.center) @ self.rotation()

    def contains(self, points: npt.ArrayLike, margin_m: float = 0.0) -> np.ndarray:
        """Which points (Nx3) lie inside the box grown by ``margin_m`` on every side."""
        half = np.asarray(self.size) / 2 + margin_m
        return np.all(np.abs(self.to_local(points)) <= half, axis=1)

    def corners(self) -> np.ndarray:
        """The 8 corners (8x3), bottom face first, counter-clockwise seen from above."""
        dx, dy, dz = (s / 2 for s in self.size)
        local = np.array(
            [
                [-dx, -dy, -dz],
                [dx, -dy, -dz],
                [dx, dy, -dz],
                [-dx, dy, -dz],
                [-dx, -dy, dz],
                [dx, -dy, dz],
                [dx, dy, dz],
                [-dx, dy, dz],
            ]
        )
        return local @ self.rotation().T + self.center

    def to_json(self) -> dict:
        return {
            'center': [round(v, 5) for v in self.center],
            'size': [round(v, 5) for v in self.size],
            'yaw': round(self.yaw, 5),
        }

    @classmethod
    def from_json(cls, record: dict) -> OrientedBox:
        try:
            return cls(record['center'], record['size'], record.get('yaw', 0.0))
        except (KeyError, TypeError) as error:
            raise ValueError(f'not a box record ({error!r}): {record!r}') from None


def fit_box(points: npt.ArrayLike, voxel_size_m: float, floor_z: float | None = None, trim: float = 0.0) -> OrientedBox:
    """The tightest upright box around ``points`` (Nx3 surface voxel centres, map frame z up).

    The footprint's yaw is that of the minimum-area rectangle of the points
    (OpenCV), kept at 0 when that saves less than :data:`YAW_PREFERENCE`; the
    yaw is folded into [-45, 45) degrees. The box reaches :data:`BOX_PADDING_VOXELS`
    of a voxel beyond the outermost points: surface points of faces seen edge-on
    lie on the face, but those of a face seen from the front are voxel centres,
    up to half a voxel inside its edge. ``floor_z`` (the
    height of the surface the object stands on, when known) extends the box
    down to it if the lowest point is within two voxels of it: the contact
    with a support is never observed. ``trim`` (a fraction) ignores that share of
    the outermost points on each side of each axis (stray voxels along an object's border).
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(points) == 0:
        raise ValueError('fit_box needs at least one point')
    half_voxel = voxel_size_m / 2
    pad = BOX_PADDING_VOXELS * voxel_size_m
    xy = points[:, :2]
    yaw = 0.0
    if len(points) >= 3:
        (_, _), (width, height), angle_deg = cv2.minAreaRect(xy.astype(np.float32))
        extent = xy.max(axis=0) - xy.min(axis=0)
        padded_aligned = (extent[0] + voxel_size_m) * (extent[1] + voxel_size_m)
        padded_turned = (width + voxel_size_m) * (height + voxel_size_m)
        if padded_turned < (1.0 - YAW_PREFERENCE) * padded_aligned:
            yaw = math.radians(angle_deg)
            yaw = (yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4
    c, s = math.cos(yaw), math.sin(yaw)
    local = xy @ np.array([[c, -s], [s, c]])
    lo_q, hi_q = (100.0 * trim, 100.0 * (1.0 - trim)) if trim > 0 else (0.0, 100.0)
    lo_xy = np.percentile(local, lo_q, axis=0) - pad
    hi_xy = np.percentile(local, hi_q, axis=0) + pad
    z_lo: float
    z_hi: float
    z_lo, z_hi = np.percentile(points[:, 2], lo_q) - pad, np.percentile(points[:, 2], hi_q) + pad
    if floor_z is not None and floor_z < z_lo and z_lo - floor_z <= 2 * voxel_size_m + half_voxel:
        z_lo = floor_z
    center_xy = np.array([[c, -s], [s, c]]) @ ((lo_xy + hi_xy) / 2)
    return OrientedBox(
        (center_xy[0], center_xy[1], (z_lo + z_hi) / 2), (hi_xy[0] - lo_xy[0], hi_xy[1] - lo_xy[1], z_hi - z_lo), yaw
    )


def footprint_intersection_m2(a: OrientedBox, b: OrientedBox) -> float:
    """Area of the intersection of the two boxes' footprints (turned rectangles), square metres."""
    rect_a = ((a.center[0], a.center[1]), (a.size[0], a.size[1]), math.degrees(a.yaw))
    rect_b = ((b.center[0], b.center[1]), (b.size[0], b.size[1]), math.degrees(b.yaw))
    kind, polygon = cv2.rotatedRectangleIntersection(rect_a, rect_b)
    if kind == cv2.INTERSECT_NONE or polygon is None or len(polygon) < 3:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(polygon.astype(np.float32))))


def box_iou(a: OrientedBox, b: OrientedBox) -> float:
    """Volume intersection over union of two upright boxes, in [0, 1]."""
    z_overlap = min(a.center[2] + a.size[2] / 2, b.center[2] + b.size[2] / 2) - max(
        a.center[2] - a.size[2] / 2, b.center[2] - b.size[2] / 2
    )
    if z_overlap <= 0.0:
        return 0.0
    intersection = footprint_intersection_m2(a, b) * z_overlap
    union = a.volume + b.volume - intersection
    return float(intersection / union) if union > 0.0 else 0.0
