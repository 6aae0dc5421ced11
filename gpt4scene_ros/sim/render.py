"""Views of a synthetic scene: the camera path and the ray-cast colour, depth and instance images.

Depth sensor model (``depth_noise=True``): Gaussian noise along the ray with
``sigma(z) = noise_sigma_base_m + noise_sigma_quadratic_per_m * (z - noise_sigma_offset_m)^2``,
random dropout of ``dropout_fraction`` of the pixels, dropout where the cosine
between ray and surface normal is below ``grazing_dropout_cos``. The working
range ``[min_depth_m, max_depth_m]`` always applies; with ``depth_noise=False``
depth is otherwise exact. The instance image is geometric ground truth and does
not follow depth dropout.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import open3d as o3d

from gpt4scene_ros.common.frames import check_rigid_transform
from gpt4scene_ros.sim.scene import _STREAM_CAMERA, SyntheticScene, SyntheticSceneConfig, _RenderTables, _rng, room_pose

# ---------------------------------------------------------------------------
# Camera path


def camera_path(config: SyntheticSceneConfig) -> list[np.ndarray]:
    """Return ``config.num_frames`` poses ``T_world_camera`` on a smooth closed path: two laps of the room.

    The camera circles the room centre twice on a slightly wobbling ellipse
    ``camera_wall_margin_m`` inside the walls, at about ``camera_height_m``
    (bobbing by ``camera_bob_m``). It faces the middle of the room, swinging up
    to ``camera_look_aside_deg`` to either side; the swing is reversed on the
    second lap, so each place is passed once looking ahead and once looking
    back, and objects near the walls are seen from both sides as well as from
    across the room. Pitch wanders between about 5 and 40 degrees down (the
    ceiling is seen at times) and roll by a few degrees.
    """
    rng = _rng(config.seed, _STREAM_CAMERA)
    T_world_room = room_pose(config)
    semi_x = config.room_size_x_m / 2 - config.camera_wall_margin_m
    semi_y = config.room_size_y_m / 2 - config.camera_wall_margin_m
    start = rng.uniform(0, 2 * np.pi)
    direction = rng.choice([-1.0, 1.0])
    phases = rng.uniform(0, 2 * np.pi, size=6)
    look_aside = math.radians(config.camera_look_aside_deg)
    poses = []
    for i in range(config.num_frames):
        s = 2 * np.pi * i / config.num_frames
        angle = start + direction * 2 * s
        scale = 1.0 - 0.15 * (0.5 + 0.5 * math.sin(4 * s + phases[0]))
        position = np.array(
            [
                semi_x * scale * math.cos(angle),
                semi_y * scale * math.sin(angle),
                config.camera_height_m + config.camera_bob_m * math.sin(5 * s + phases[1]),
            ]
        )
        # An odd multiple of s: opposite swing at the same place on the second lap.
        yaw = math.atan2(-position[1], -position[0]) + look_aside * math.sin(3 * s + phases[2])
        pitch = -math.radians(22.0 + 15.0 * math.sin(4 * s + phases[3]) + 3.0 * math.sin(11 * s + phases[4]))
        roll = math.radians(3.0) * math.sin(5 * s + phases[5])
        forward = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)])
        right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])  # forward x up, normalised
        down = np.cross(forward, right)
        right, down = math.cos(roll) * right + math.sin(roll) * down, -math.sin(roll) * right + math.cos(roll) * down
        T = np.eye(4)
        T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = right, down, forward, position
        poses.append(T_world_room @ T)
    return poses


# ---------------------------------------------------------------------------
# Rendering

_NOISE_WAVES = ((7.1, 3.3, 5.7, 0.3, 0.4), (-4.9, 8.3, 2.9, 1.7, 0.35), (23.0, -17.0, 19.0, 2.9, 0.25))
"""Smooth texture variation: (kx, ky, kz [rad/m], phase, weight) of summed sine waves."""
_SUN = tuple(float(c) for c in np.array([0.35, -0.25, 1.0]) / np.linalg.norm([0.35, -0.25, 1.0]))
_CHECKER_OFFSET = np.float32(0.3719)
"""Shifts checker cell borders off the room's round-numbered planes."""

# Per-pixel work is done on separate x, y, z arrays: elementwise numpy is fast
# and single-threaded, whereas (N,3) @ (3,3) products go through BLAS threads
# that compete with the ray caster's spinning OpenMP threads.


@lru_cache(maxsize=8)
def _pixel_rays(width: int, height: int, fx: float, fy: float, cx: float, cy: float) -> tuple[np.ndarray, ...]:
    """Camera-frame ray directions (x, y; z = 1, so ray length = depth) and their norms, per pixel."""
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    x = ((u - cx) / fx).ravel()
    y = ((v - cy) / fy).ravel()
    norms = np.sqrt(x * x + y * y + 1.0)
    arrays = tuple(a.astype(np.float32) for a in (x, y, norms))
    for a in arrays:
        a.flags.writeable = False
    return arrays


def render_frame(
    scene: SyntheticScene,
    T_world_camera: np.ndarray,
    config: SyntheticSceneConfig,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray-cast one view of ``scene``; camera and sensor model come from ``config``.

    Returns ``(color, depth_m, instance)``: RGB ``HxWx3 uint8``, depth ``HxW
    float32`` metres (0 = no measurement), instance ids ``HxW uint16`` (0 = room
    structure or nothing hit). ``rng`` drives the depth noise and is required
    when ``config.depth_noise`` is on; it is not used otherwise.
    """
    T = check_rigid_transform(T_world_camera, 'T_world_camera')
    T = np.linalg.inv(room_pose(scene.config)) @ T  # the scene is ray cast in the room's own frame
    if config.depth_noise and not isinstance(rng, np.random.Generator):
        raise ValueError(
            'render_frame needs rng=np.random.Generator when config.depth_noise is on, '
            f'got {type(rng).__name__}; pass one or turn depth_noise off'
        )
    tables = scene.render_tables
    cam_x, cam_y, ray_norms = _pixel_rays(config.width, config.height, config.fx, config.fy, config.cx, config.cy)
    R = T[:3, :3].astype(np.float32)
    origin = T[:3, 3].astype(np.float32)
    count = len(cam_x)
    rays = np.empty((count, 6), dtype=np.float32)
    rays[:, :3] = origin
    directions = [cam_x * R[k, 0] + cam_y * R[k, 1] + R[k, 2] for k in range(3)]
    for k in range(3):
        rays[:, 3 + k] = directions[k]
    result = tables.raycaster.cast_rays(o3d.core.Tensor.from_numpy(rays))
    t_hit = result['t_hit'].numpy()
    geometry = result['geometry_ids'].numpy()
    normals_n3 = result['primitive_normals'].numpy()

    hit = geometry != o3d.t.geometry.RaycastingScene.INVALID_ID
    all_hit = bool(hit.all())
    index = np.where(hit, geometry, len(tables.instance) - 1).astype(np.intp)
    depth = t_hit if all_hit else np.where(hit, t_hit, np.float32(0.0))
    points = [directions[k] * depth + origin[k] for k in range(3)]

    # Face the normals towards the camera, then texture and shade.
    normals = [np.ascontiguousarray(normals_n3[:, k]) for k in range(3)]
    facing = normals[0] * directions[0] + normals[1] * directions[1] + normals[2] * directions[2]
    flip = np.where(facing > 0, np.float32(-1.0), np.float32(1.0))
    normals = [n * flip for n in normals]
    incidence_cos = np.abs(facing) / ray_norms
    color = _shade(tables, index, points, normals)
    if not all_hit:
        color[~hit] = 0.0
    color_u8 = np.empty((count, 3), dtype=np.uint8)
    np.clip(color * np.float32(255.0) + np.float32(0.5), 0.0, 255.0, out=color)
    color_u8[...] = color

    measured = depth
    valid = hit
    if config.depth_noise:
        assert rng is not None  # checked above
        sigma = np.square(depth - np.float32(config.noise_sigma_offset_m))
        sigma *= np.float32(config.noise_sigma_quadratic_per_m)
        sigma += np.float32(config.noise_sigma_base_m)
        measured = depth + rng.standard_normal(count, dtype=np.float32) * sigma
        valid = valid & (incidence_cos >= config.grazing_dropout_cos)
        valid &= rng.random(count, dtype=np.float32) >= config.dropout_fraction
    valid = valid & (measured >= config.min_depth_m) & (measured <= config.max_depth_m)
    depth_m = np.where(valid, measured, np.float32(0.0)).astype(np.float32, copy=False)

    shape = (config.height, config.width)
    instance = np.take(tables.instance, index)
    return color_u8.reshape(shape + (3,)), depth_m.reshape(shape), instance.reshape(shape)


def _shade(tables: _RenderTables, index: np.ndarray, points: list[np.ndarray], normals: list[np.ndarray]) -> np.ndarray:
    """Linear RGB (Nx3 float32) of the hit points: textured albedo times lighting."""
    px, py, pz = points
    nx, ny, nz = normals
    inv_cell = np.take(tables.checker_inv_cell, index)
    cells = np.floor(px * inv_cell + _CHECKER_OFFSET)
    cells += np.floor(py * inv_cell + _CHECKER_OFFSET)
    cells += np.floor(pz * np.take(tables.checker_inv_cell_z, index) + _CHECKER_OFFSET)
    parity = (cells.astype(np.int32) & 1).astype(np.float32)
    texture = np.float32(1.0) - np.take(tables.checker_contrast, index) * parity
    waves = np.zeros_like(px)
    for kx, ky, kz, phase, weight in _NOISE_WAVES:
        waves += np.float32(weight) * np.sin(
            px * np.float32(kx) + py * np.float32(ky) + pz * np.float32(kz) + np.float32(phase)
        )
    texture *= np.float32(1.0) + np.take(tables.noise_amplitude, index) * waves

    to_lamp = [tables.lamp[0] - px, tables.lamp[1] - py, tables.lamp[2] - pz]
    lamp_distance_sq = to_lamp[0] * to_lamp[0] + to_lamp[1] * to_lamp[1] + to_lamp[2] * to_lamp[2]
    lamp_cos = (nx * to_lamp[0] + ny * to_lamp[1] + nz * to_lamp[2]) / np.sqrt(lamp_distance_sq + 1e-6)
    sun_cos = nx * np.float32(_SUN[0]) + ny * np.float32(_SUN[1]) + nz * np.float32(_SUN[2])
    shade = np.maximum(sun_cos, 0.0) * np.float32(0.22) + np.float32(0.42)
    shade += np.float32(0.5) * np.maximum(lamp_cos, 0.0) / (1.0 + np.float32(0.12) * lamp_distance_sq)
    shade *= texture

    albedo = np.take(tables.color, index, axis=0)
    on_poster_wall = np.flatnonzero(np.isin(index, tables.poster_geometry))
    for geometry, poster in zip(tables.poster_geometry, tables.posters):
        candidates = on_poster_wall[index[on_poster_wall] == geometry]
        along = points[poster.along_axis][candidates]
        height = pz[candidates]
        keep = (
            (along >= poster.along_min)
            & (along <= poster.along_max)
            & (height >= poster.z_min)
            & (height <= poster.z_max)
        )
        if not keep.any():
            continue
        inside = candidates[keep]
        pattern = (
            np.floor((along[keep] - poster.along_min) / poster.cell_m)
            + np.floor((height[keep] - poster.z_min) / poster.cell_m)
        ).astype(np.int32) & 1
        # np.float32 of a sequence is a float32 array; numpy's stubs type the scalar constructor only.
        color_a, color_b = np.float32(poster.color_a), np.float32(poster.color_b)  # type: ignore[arg-type]
        albedo[inside] = np.where(pattern[:, None] == 1, color_a, color_b)
        # Posters are matte paper: no wall texture on them.
        shade[inside] /= texture[inside]
    albedo *= shade[:, None]
    return albedo
