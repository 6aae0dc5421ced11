"""Plain data types shared by the core and the ROS adapters.

Conventions:
- Images are numpy arrays: colour ``HxWx3 uint8`` RGB; depth as the sensor
  gave it (``HxW uint16`` in units of ``1 / depth_scale`` metres, or float32
  metres with ``depth_scale`` 1), 0 meaning "no measurement".
  :func:`depth_to_metres` is the one conversion to metres.
- Camera frames follow the optical convention (x right, y down, z forward).
- A transform ``T_a_b`` is a 4x4 matrix mapping points in frame ``b`` into
  frame ``a`` (so ``T_world_camera`` is the camera pose in the world).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

RIGID_TOLERANCE = 1e-3
"""Largest deviation of R^T R from identity (and of det R from 1) still accepted as rigid."""


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of an image of ``width`` x ``height`` pixels."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        for name in ('width', 'height'):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f'CameraIntrinsics.{name} must be a positive integer, got {value!r}')
        for name in ('fx', 'fy', 'cx', 'cy'):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value):
                raise ValueError(f'CameraIntrinsics.{name} must be a finite number, got {value!r}')
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f'CameraIntrinsics focal lengths must be > 0, got fx={self.fx}, fy={self.fy}')

    @classmethod
    def from_matrix(cls, K: npt.ArrayLike, width: int, height: int) -> CameraIntrinsics:
        """Build from a 3x3 camera matrix; raises ValueError on a malformed one."""
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3):
            raise ValueError(f'camera matrix must be 3x3, got shape {K.shape}')
        if not np.all(np.isfinite(K)):
            raise ValueError('camera matrix has non-finite entries')
        if abs(K[0, 1]) > 1e-9 or np.any(np.abs(K[2] - (0.0, 0.0, 1.0)) > 1e-9) or abs(K[1, 0]) > 1e-9:
            raise ValueError(f'camera matrix is not a pinhole matrix [[fx,0,cx],[0,fy,cy],[0,0,1]]: {K.tolist()}')
        return cls(int(width), int(height), float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]))

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


def check_rigid_transform(T: npt.ArrayLike, name: str = 'transform') -> np.ndarray:
    """Return ``T`` as a float64 4x4 array, or raise ValueError naming ``name``.

    Rejects wrong shapes, NaN/inf, a bottom row other than [0 0 0 1], and a
    rotation block that is not orthonormal with determinant +1.
    """
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f'{name} must be a 4x4 matrix, got shape {T.shape}')
    if not np.all(np.isfinite(T)):
        raise ValueError(f'{name} has NaN or infinite entries')
    if np.max(np.abs(T[3] - (0.0, 0.0, 0.0, 1.0))) > RIGID_TOLERANCE:
        raise ValueError(f'{name} bottom row must be [0 0 0 1], got {T[3].tolist()}')
    R = T[:3, :3]
    orthonormal_error = float(np.max(np.abs(R.T @ R - np.eye(3))))
    if orthonormal_error > RIGID_TOLERANCE or abs(np.linalg.det(R) - 1.0) > RIGID_TOLERANCE:
        raise ValueError(
            f'{name} is not rigid: rotation block deviates from orthonormal by {orthonormal_error:.3g} '
            f'(det {np.linalg.det(R):.4f}); tolerance {RIGID_TOLERANCE}'
        )
    return T


def depth_to_metres(depth: np.ndarray, depth_scale: float) -> np.ndarray:
    """Sensor depth as HxW float32 metres, 0 where there is no measurement (0, NaN, inf, negative)."""
    depth = np.asarray(depth)
    if depth.dtype.kind in 'ui':
        return depth.astype(np.float32) / np.float32(depth_scale)
    with np.errstate(invalid='ignore'):
        metres = depth.astype(np.float32) / np.float32(depth_scale)
        return np.where(np.isfinite(metres) & (metres > 0), metres, np.float32(0.0))


def depth_to_millimetres(depth: np.ndarray, depth_scale: float) -> np.ndarray:
    """Sensor depth as uint16 millimetres (ROS ``16UC1``), 0 where there is no measurement or it does not fit;
    depth already in millimetres is returned as it is."""
    depth = np.asarray(depth)
    if depth.dtype == np.uint16 and depth_scale == 1000.0:
        return depth
    millimetres = np.round(depth_to_metres(depth, depth_scale).astype(np.float64) * 1000.0)
    return np.where((millimetres > 0) & (millimetres < 65535), millimetres, 0).astype(np.uint16)


@dataclass(frozen=True)
class RgbdFrame:
    """One registered colour + depth image with its camera pose.

    ``depth`` is the sensor's image (uint16 units, or float metres) and
    ``depth_scale`` its units per metre; it reaches the TSDF unconverted.
    """

    index: int
    timestamp_s: float
    color: np.ndarray
    depth: np.ndarray
    T_world_camera: np.ndarray
    depth_scale: float = 1.0

    @property
    def depth_m(self) -> np.ndarray:
        """Depth in metres (float32, 0 = no measurement), for what works in metres (views, gravity, tests)."""
        return depth_to_metres(self.depth, self.depth_scale)
