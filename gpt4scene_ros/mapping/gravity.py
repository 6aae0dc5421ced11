"""A gravity-aligned (z-up) map frame estimated from an RGB-D sequence.

Recorded sequences (7-Scenes) use a world frame that is not gravity-aligned,
while a bird's-eye view and ROS odometry (REP-103) need z up. The estimate
uses only the data: horizontal surfaces (floor, table tops, ceiling) are the
most common surface orientation in indoor scenes, and cameras are held
roughly upright.

Method (``estimate_gravity_alignment``):
1. Sample up to ``max_frames`` frames evenly; frames that raise FrameError are
   skipped. Each depth image is subsampled every ``pixel_step`` pixels and
   back-projected; a point's normal is the cross product of the central
   differences to its image-grid neighbours, oriented towards the camera and
   rotated into the world frame. Points are dropped at depth discontinuities
   and on creases (where floor meets wall, the normals from the forward and
   the backward neighbours differ by more than ``MAX_CREASE_DEG``), whose
   mixed normals would tilt the estimate.
2. Prior: up = -(mean camera y axis in the world), since the optical y axis
   points down in an upright camera.
3. Coarse search: among directions within ``COARSE_SEARCH_DEG`` of the prior,
   take the one with the most normals within ``COARSE_WINDOW_DEG`` of +/- it
   (the prior can be off by the cameras' mean pitch, 25 deg on 7-Scenes).
4. Refine: up = principal eigenvector of the scatter matrix of the normals
   within ``REFINE_CONE_DEG`` of +/- up, sign agreeing with the prior, until
   it stops moving.
5. Rotation: the smallest rotation taking up to +z (Rodrigues), so the map's
   yaw stays as close to the world's as possible. Translation: z is shifted
   so that the floor is at z = 0. Floor: among the points whose normal is
   within ``FLOOR_NORMAL_DEG`` of up (all points when fewer than
   ``MIN_FLOOR_POINTS`` face up), take the height below which
   ``FLOOR_PERCENTILE`` % of them lie, then the median height of those within
   ``FLOOR_BAND_M`` above it, so that the floor plane sits in the middle of
   its depth noise rather than at its lower tail. Without a visible floor
   this is the lowest upward-facing surface.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gpt4scene_ros.common.frames import CameraIntrinsics, RgbdFrame, check_rigid_transform
from gpt4scene_ros.io.sequence import FrameError, RgbdSequence

logger = logging.getLogger(__name__)

COARSE_SEARCH_DEG = 40.0
COARSE_WINDOW_DEG = 10.0
COARSE_CANDIDATES_ON_SPHERE = 4000
COARSE_MAX_NORMALS = 20000
REFINE_CONE_DEG = 25.0
REFINE_MAX_ITERATIONS = 100
REFINE_CONVERGED_RAD = 1e-6
FLOOR_NORMAL_DEG = 15.0
FLOOR_PERCENTILE = 1.0
FLOOR_BAND_M = 0.10
MIN_NORMALS = 200
"""Fewest valid surface normals (and fewest in the refinement cone) for an estimate."""
MIN_FLOOR_POINTS = 100
MAX_DEPTH_JUMP_RATIO = 4.0
"""A neighbour whose depth differs by more than this many lateral grid spacings is across a discontinuity."""
MAX_CREASE_DEG = 20.0
"""Largest angle between the normals from the forward and the backward neighbours (larger: a crease, dropped)."""


@dataclass(frozen=True)
class GravityAlignment:
    """World frame -> gravity-aligned map frame (z up, floor at z = 0)."""

    T_map_world: np.ndarray
    """4x4 rigid transform mapping world points into the map frame."""
    up_in_world: np.ndarray
    """Unit vector pointing up (against gravity), in world coordinates."""
    floor_height_m: float
    """Height of the floor estimate along ``up_in_world``, in world units (before the shift)."""
    support: int
    """Number of surface normals that supported the estimate (0 when not estimated)."""
    method: str
    """One sentence saying how the alignment was derived; store it next to outputs."""

    def __post_init__(self) -> None:
        T = check_rigid_transform(self.T_map_world, name='GravityAlignment.T_map_world').copy()
        up = np.asarray(self.up_in_world, dtype=np.float64).copy()
        if up.shape != (3,) or not np.all(np.isfinite(up)) or abs(np.linalg.norm(up) - 1.0) > 1e-6:
            raise ValueError(f'GravityAlignment.up_in_world must be a finite unit 3-vector, got {up.tolist()}')
        if not math.isfinite(self.floor_height_m):
            raise ValueError(f'GravityAlignment.floor_height_m must be finite, got {self.floor_height_m!r}')
        if isinstance(self.support, bool) or not isinstance(self.support, (int, np.integer)) or self.support < 0:
            raise ValueError(f'GravityAlignment.support must be an integer >= 0, got {self.support!r}')
        if not isinstance(self.method, str) or not self.method.strip():
            raise ValueError('GravityAlignment.method must be a non-empty sentence')
        T.setflags(write=False)
        up.setflags(write=False)
        object.__setattr__(self, 'T_map_world', T)
        object.__setattr__(self, 'up_in_world', up)
        object.__setattr__(self, 'floor_height_m', float(self.floor_height_m))
        object.__setattr__(self, 'support', int(self.support))


def identity_alignment(reason: str) -> GravityAlignment:
    """Use the world frame as the map frame as it is; ``reason`` says why (it goes into ``method``)."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError('identity_alignment needs a non-empty reason')
    return GravityAlignment(
        T_map_world=np.eye(4),
        up_in_world=np.array([0.0, 0.0, 1.0]),
        floor_height_m=0.0,
        support=0,
        method=f'Identity (world frame used as the map frame): {reason.strip()}',
    )


def frame_surface_samples(
    frame: RgbdFrame, intrinsics: CameraIntrinsics, pixel_step: int = 6, max_depth_m: float = 5.0
) -> tuple[np.ndarray, np.ndarray]:
    """World points (Nx3) and unit surface normals (Nx3, facing the camera) of a subsampled depth image.

    Points are taken every ``pixel_step`` pixels; a normal is the cross product
    of the central differences to the horizontal and vertical grid neighbours.
    Points with an invalid or farther than ``max_depth_m`` neighbour, across a
    depth discontinuity or on a crease are dropped.
    """
    if isinstance(pixel_step, bool) or not isinstance(pixel_step, (int, np.integer)) or pixel_step < 1:
        raise ValueError(f'pixel_step must be an integer >= 1, got {pixel_step!r}')
    depth = np.asarray(frame.depth_m)
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(
            f'frame {frame.index}: depth is {depth.shape}, intrinsics say {(intrinsics.height, intrinsics.width)}'
        )
    rows = np.arange(0, intrinsics.height, pixel_step)
    cols = np.arange(0, intrinsics.width, pixel_step)
    z = depth[np.ix_(rows, cols)].astype(np.float64)
    z[~np.isfinite(z) | (z > max_depth_m)] = 0.0
    x = (cols[None, :] - intrinsics.cx) / intrinsics.fx * z
    y = (rows[:, None] - intrinsics.cy) / intrinsics.fy * z
    P = np.stack([x, y, z], axis=-1)

    centre = (slice(1, -1), slice(1, -1))
    neighbours = {
        'left': (slice(1, -1), slice(0, -2)),
        'right': (slice(1, -1), slice(2, None)),
        'up': (slice(0, -2), slice(1, -1)),
        'down': (slice(2, None), slice(1, -1)),
    }
    z0 = z[centre]
    max_jump = MAX_DEPTH_JUMP_RATIO * pixel_step * z0 / min(intrinsics.fx, intrinsics.fy)
    valid = z0 > 0
    for index in neighbours.values():
        zn = z[index]
        valid &= (zn > 0) & (np.abs(zn - z0) <= max_jump)
    P0 = P[centre]
    forward = _unit(np.cross(P[neighbours['right']] - P0, P[neighbours['down']] - P0))
    backward = _unit(np.cross(P0 - P[neighbours['left']], P0 - P[neighbours['up']]))
    valid &= np.einsum('...i,...i->...', forward, backward) >= math.cos(math.radians(MAX_CREASE_DEG))
    normals = _unit(
        np.cross(P[neighbours['right']] - P[neighbours['left']], P[neighbours['down']] - P[neighbours['up']])
    )[valid]
    points = P0[valid]
    keep = np.linalg.norm(normals, axis=1) > 0.5
    normals = normals[keep]
    points = points[keep]
    normals[np.einsum('ij,ij->i', normals, points) > 0] *= -1.0  # face the camera

    T = np.asarray(frame.T_world_camera, dtype=np.float64)
    return points @ T[:3, :3].T + T[:3, 3], normals @ T[:3, :3].T


def estimate_gravity_alignment(
    sequence: RgbdSequence, max_frames: int = 40, *, pixel_step: int = 6
) -> GravityAlignment:
    """Estimate the gravity-aligned map frame of ``sequence`` from its surface normals (see module doc).

    ``sequence`` needs ``len()``, ``load(i)`` and ``intrinsics`` (an RgbdSequence).
    Raises ValueError when no sampled frame loads or there are too few valid normals.
    """
    if isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer)) or max_frames < 1:
        raise ValueError(f'max_frames must be an integer >= 1, got {max_frames!r}')
    name = str(getattr(sequence, 'root', type(sequence).__name__))
    count = len(sequence)
    if count == 0:
        raise ValueError(f'{name}: cannot estimate gravity from an empty sequence')
    positions = np.unique(np.linspace(0, count - 1, min(max_frames, count)).round().astype(int))

    points: list[np.ndarray] = []
    normals: list[np.ndarray] = []
    camera_y: list[np.ndarray] = []
    for i in positions:
        try:
            frame = sequence.load(int(i))
        except FrameError as error:
            logger.warning('gravity estimate skips frame %d: %s', i, error)
            continue
        p, n = frame_surface_samples(frame, sequence.intrinsics, pixel_step=pixel_step)
        points.append(p)
        normals.append(n)
        camera_y.append(np.asarray(frame.T_world_camera, dtype=np.float64)[:3, 1])
    if not camera_y:
        raise ValueError(
            f'{name}: none of the {len(positions)} frames sampled for the gravity estimate could be loaded'
        )
    P = np.concatenate(points)
    N = np.concatenate(normals)
    if len(N) < MIN_NORMALS:
        raise ValueError(
            f'{name}: only {len(N)} valid surface normals in {len(camera_y)} frames (need '
            f'{MIN_NORMALS}); is the depth empty or all invalid?'
        )

    mean_y = np.mean(camera_y, axis=0)
    if np.linalg.norm(mean_y) < 1e-3:
        raise ValueError(f'{name}: camera y axes cancel out, so there is no prior for "up"')
    prior = -mean_y / np.linalg.norm(mean_y)

    up = _coarse_up(N, prior)
    cos_cone = math.cos(math.radians(REFINE_CONE_DEG))
    for _ in range(REFINE_MAX_ITERATIONS):
        selected = N[np.abs(N @ up) >= cos_cone]
        if len(selected) < MIN_NORMALS:
            raise ValueError(
                f'{name}: only {len(selected)} surface normals within {REFINE_CONE_DEG} deg of the '
                f'up estimate (need {MIN_NORMALS}); no horizontal surfaces seen?'
            )
        _, vectors = np.linalg.eigh(selected.T @ selected)
        new_up = vectors[:, -1] if vectors[:, -1] @ prior >= 0 else -vectors[:, -1]
        moved = math.acos(min(1.0, float(new_up @ up)))
        up = new_up
        if moved < REFINE_CONVERGED_RAD:
            break
    else:
        logger.warning('%s: gravity refinement did not converge in %d iterations', name, REFINE_MAX_ITERATIONS)
    support = int(np.count_nonzero(np.abs(N @ up) >= cos_cone))

    heights = P @ up
    facing_up = N @ up >= math.cos(math.radians(FLOOR_NORMAL_DEG))
    if np.count_nonzero(facing_up) >= MIN_FLOOR_POINTS:
        floor_heights = heights[facing_up]
        floor_source = f'upward-facing (within {FLOOR_NORMAL_DEG:g} deg) surface points'
    else:
        logger.warning(
            '%s: only %d upward-facing points; floor taken from all points', name, np.count_nonzero(facing_up)
        )
        floor_heights = heights
        floor_source = 'all points (too few face up)'
    lowest = float(np.percentile(floor_heights, FLOOR_PERCENTILE))
    floor = float(np.median(floor_heights[(floor_heights >= lowest) & (floor_heights <= lowest + FLOOR_BAND_M)]))

    T = np.eye(4)
    T[:3, :3] = rotation_between(up, np.array([0.0, 0.0, 1.0]))
    T[2, 3] = -floor
    method = (
        f'Gravity from the data: up is the principal axis of the {support} surface normals (of {len(N)} '
        f'from {len(camera_y)} frames of {name}) within {REFINE_CONE_DEG:g} deg of it, iterated from the '
        f"most common normal direction within {COARSE_SEARCH_DEG:g} deg of the cameras' mean up (minus their "
        f'mean y axis); the map frame is the world turned by the smallest rotation taking up to +z and shifted '
        f'along z so that the floor (the median height of the {floor_source} within {FLOOR_BAND_M:g} m above '
        f'their {FLOOR_PERCENTILE:g} % height quantile) is at z = 0.'
    )
    alignment = GravityAlignment(T_map_world=T, up_in_world=up, floor_height_m=floor, support=support, method=method)
    logger.info(
        '%s: up in world %s (%.1f deg from the camera prior), floor at %.3f m, %d supporting normals',
        name,
        np.round(up, 4).tolist(),
        math.degrees(math.acos(min(1.0, float(up @ prior)))),
        floor,
        support,
    )
    return alignment


def rotation_between(a: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
    """Smallest rotation (3x3) taking unit vector ``a`` to unit vector ``b`` (Rodrigues)."""
    u = np.asarray(a, dtype=np.float64)
    v = np.asarray(b, dtype=np.float64)
    if (
        u.shape != (3,)
        or v.shape != (3,)
        or not (np.all(np.isfinite(u)) and np.all(np.isfinite(v)))
        or np.linalg.norm(u) == 0
        or np.linalg.norm(v) == 0
    ):
        raise ValueError(f'rotation_between needs two finite non-zero 3-vectors, got {u.tolist()} and {v.tolist()}')
    u = u / np.linalg.norm(u)
    v = v / np.linalg.norm(v)
    axis = np.cross(u, v)
    sin_angle = float(np.linalg.norm(axis))
    cos_angle = float(u @ v)
    if sin_angle < 1e-12:
        if cos_angle > 0:
            return np.eye(3)
        # Opposite vectors: half a turn about any axis perpendicular to a.
        helper = np.eye(3)[int(np.argmin(np.abs(u)))]
        k = np.cross(u, helper)
        k /= np.linalg.norm(k)
        return 2.0 * np.outer(k, k) - np.eye(3)
    K = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + K + K @ K * ((1.0 - cos_angle) / sin_angle**2)


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; zero rows stay zero."""
    lengths = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.divide(vectors, lengths, out=np.zeros_like(vectors), where=lengths > 0)


def _coarse_up(N: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Find the direction within COARSE_SEARCH_DEG of ``prior`` with most normals within COARSE_WINDOW_DEG of it."""
    candidates = _fibonacci_sphere(COARSE_CANDIDATES_ON_SPHERE)
    candidates = candidates[candidates @ prior >= math.cos(math.radians(COARSE_SEARCH_DEG))]
    candidates = np.vstack([prior, candidates])
    stride = max(1, len(N) // COARSE_MAX_NORMALS)
    sample = N[::stride].astype(np.float32)
    counts = np.count_nonzero(
        np.abs(sample @ candidates.T.astype(np.float32)) >= math.cos(math.radians(COARSE_WINDOW_DEG)), axis=0
    )
    return candidates[int(np.argmax(counts))]


def _fibonacci_sphere(count: int) -> np.ndarray:
    """``count`` nearly evenly spread unit vectors."""
    k = np.arange(count) + 0.5
    z = 1.0 - 2.0 * k / count
    radius = np.sqrt(1.0 - z * z)
    angle = math.pi * (3.0 - math.sqrt(5.0)) * k
    return np.stack([radius * np.cos(angle), radius * np.sin(angle), z], axis=1)
