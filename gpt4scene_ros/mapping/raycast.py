"""Depth images of the map seen from a camera, ray cast against its surface (for checks and keyframe work)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import open3d as o3d
import open3d.core as o3c

from gpt4scene_ros.common.frames import CameraIntrinsics, check_rigid_transform
from gpt4scene_ros.mapping.tsdf import SceneMap


def render_depth(scene_map: SceneMap, intrinsics: CameraIntrinsics, T_map_camera: npt.ArrayLike) -> np.ndarray:
    """Depth (HxW float32 metres, 0 = no surface) of the map seen from a camera, ray cast from the TSDF.

    The rays (through pixel centres at integer coordinates, the ROS / OpenCV
    convention) are cast against the TSDF's zero-level surface, i.e. the
    marching-cubes :meth:`~gpt4scene_ros.mapping.tsdf.SceneMap.mesh` of the voxels observed at least
    ``weight_threshold`` times, with Open3D's ``RaycastingScene`` (Embree);
    hits outside [depth_min_m, depth_max_m] count as no surface. The scene
    is built once per map state. (Open3D 0.20's ``VoxelBlockGrid.ray_cast``
    is not used: it samples the nearest voxel, about a voxel off, and its
    range estimation returns incomplete, run-to-run different images and
    has crashed this process.)
    """
    if not isinstance(intrinsics, CameraIntrinsics):
        raise TypeError(f'intrinsics must be CameraIntrinsics, got {type(intrinsics).__name__}')
    T_map_camera = check_rigid_transform(T_map_camera, 'T_map_camera')
    width, height = int(intrinsics.width), int(intrinsics.height)
    scene = scene_map.cached('raycasting_scene', lambda: _raycasting_scene(scene_map))
    if scene is None:
        return np.zeros((height, width), np.float32)
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    # Directions with camera z = 1, so the hit distance along them is the depth.
    directions = (
        np.stack([(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy, np.ones_like(u)], axis=-1)
        @ T_map_camera[:3, :3].T
    )
    rays = np.empty((height, width, 6), np.float32)
    rays[..., :3] = T_map_camera[:3, 3]
    rays[..., 3:] = directions
    # Open3D's stubs omit the defaults of Tensor's dtype and device (taken from the array and the CPU).
    hit = scene.cast_rays(o3c.Tensor(rays))['t_hit'].numpy()  # type: ignore[call-overload]
    with np.errstate(invalid='ignore'):
        valid = np.isfinite(hit) & (hit >= scene_map.config.depth_min_m) & (hit <= scene_map.config.depth_max_m)
    return np.where(valid, hit, 0.0).astype(np.float32)


def _raycasting_scene(scene_map: SceneMap) -> o3d.t.geometry.RaycastingScene | None:
    """Embree scene of the map's mesh; None for an empty mesh."""
    vertices, _, triangles = scene_map.mesh()
    if not len(triangles):
        return None
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(  # Open3D's stubs omit Tensor's dtype and device defaults
        o3c.Tensor(np.ascontiguousarray(vertices, np.float32)),  # type: ignore[call-overload]
        o3c.Tensor(np.ascontiguousarray(triangles, np.uint32)),  # type: ignore[call-overload]
    )
    return scene
