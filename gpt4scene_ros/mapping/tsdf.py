"""The TSDF map: RGB-D frames fused into an Open3D ``VoxelBlockGrid``, and what is read back from it.

:class:`SceneMap` fuses colour + depth frames with known camera poses into a
truncated signed distance field (TSDF) held in Open3D's tensor
``open3d.t.geometry.VoxelBlockGrid`` (attributes ``tsdf``, ``weight`` and
``color``, float32), on the CPU or a CUDA device. It gives back the surface as
a coloured point cloud, and a triangle mesh, and hands its voxel blocks to :mod:`gpt4scene_ros.mapping.map_file`
(save/load); :mod:`gpt4scene_ros.mapping.raycast` renders depth images from it and
:func:`gpt4scene_ros.mapping.bev.map_bev` the bird's-eye view of its surface.

Frames and conventions (see :mod:`gpt4scene_ros.common.frames`):

- The map frame is whatever frame the poses are given in; the BEV assumes it
  is z-up (e.g. the gravity-aligned frame of
  :func:`gpt4scene_ros.mapping.gravity.estimate_gravity_alignment`, floor at z=0).
- ``T_map_camera`` is the pose of the optical camera (x right, y down,
  z forward) in the map: it maps camera points into the map frame.
- Colour is HxWx3 uint8 RGB; depth is the sensor's HxW uint16 image with its
  ``depth_scale`` (units per metre), which reaches Open3D as it is, or float
  metres, 0 = no measurement. Float depth is turned into uint16 millimetres
  once (Open3D fuses those about twice as fast as float images; the rounding
  is far below a voxel).

Weights: every integration adds 1 to the weight of each voxel it updates, so a
voxel's weight counts the frames that observed it. ``weight_threshold`` keeps
voxels observed at least that many times in the cloud, mesh, BEV and ray casts.

Threading: a ``SceneMap`` is not thread-safe. One thread owns it (the
mapping node's single map-owner callback group); callers serialise access.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import cv2
import numpy as np
import numpy.typing as npt
import open3d as o3d
import open3d.core as o3c

from gpt4scene_ros.common.frames import CameraIntrinsics, check_rigid_transform
from gpt4scene_ros.common.motion import MotionGate, rotation_angle_deg
from gpt4scene_ros.common.settings.mapping import MappingConfig
from gpt4scene_ros.common.transforms import invert_transform

logger = logging.getLogger(__name__)

_T = TypeVar('_T')

REASONS = ('integrated', 'no_valid_depth', 'below_motion_threshold', 'stride', 'map_full')
"""Every ``IntegrationResult.reason``."""

ATTRIBUTES = ('tsdf', 'weight', 'color')
"""The voxel attributes (all float32) and their channels."""
ATTRIBUTE_CHANNELS = (1, 1, 3)
_BYTES_PER_VALUE = 4  # all attributes are float32
_FLOAT_DEPTH_SCALE_PER_M = 1000.0  # float depth goes to Open3D as uint16 millimetres
AUTO_DECIMATION_MAX = 4
"""The largest pixel step ``integration_decimation: 0`` (auto) chooses."""
_SURFACE_HEADROOM = 1.25  # the next surface extraction reserves this many times the last one's points


def integration_decimation(config: MappingConfig, intrinsics: CameraIntrinsics) -> int:
    """The pixel step :meth:`SceneMap.integrate` uses for this camera (``MappingConfig.integration_decimation``).

    Auto (0): the largest step, at most :data:`AUTO_DECIMATION_MAX`, at which one
    decimated pixel at ``depth_max_m`` spans at most one voxel. The TSDF reads one
    depth sample per voxel and frame (the pixel its centre projects to), so
    finer pixels add nothing it can hold, while the per-pixel work of Open3D's
    block allocation and of the depth checks shrinks with the square of the step.
    """
    step = config.integration_decimation
    if step == 0:
        pixels_per_voxel = config.voxel_size_m * min(intrinsics.fx, intrinsics.fy) / config.depth_max_m
        step = min(max(int(pixels_per_voxel), 1), AUTO_DECIMATION_MAX)
    return max(1, min(step, intrinsics.width, intrinsics.height))


def decimate_frame(
    color: np.ndarray, depth: np.ndarray, intrinsics: CameraIntrinsics, step: int
) -> tuple[np.ndarray, np.ndarray, CameraIntrinsics]:
    """Colour, depth and intrinsics at 1/``step`` resolution: depth takes the pixel nearest the centre of each
    ``step`` x ``step`` cell (never a mix of depths across an edge), colour the cell's mean."""
    if step == 1:
        return color, depth, intrinsics
    height, width = depth.shape[0] // step, depth.shape[1] // step
    offset = step // 2
    depth = np.ascontiguousarray(depth[offset::step, offset::step][:height, :width])
    color = cv2.resize(color[: height * step, : width * step], (width, height), interpolation=cv2.INTER_AREA)
    # Pixel offset + k * step of the full image is pixel k of the decimated one (centres at integers).
    scaled = CameraIntrinsics(
        width,
        height,
        intrinsics.fx / step,
        intrinsics.fy / step,
        (intrinsics.cx - offset) / step,
        (intrinsics.cy - offset) / step,
    )
    return color, depth, scaled


@dataclass(frozen=True)
class IntegrationResult:
    """What :meth:`SceneMap.integrate` did with one frame.

    ``reason`` is one of :data:`REASONS`: ``'integrated'``, or why the frame was
    skipped: ``'stride'`` (not the n-th frame), ``'below_motion_threshold'``
    (the camera barely moved since the last integrated frame),
    ``'no_valid_depth'`` (no depth pixel left in [depth_min_m, depth_max_m])
    or ``'map_full'`` (it would have grown the map past ``max_block_count``).
    ``invalid_depth_pixels`` counts NaN / inf / negative depth pixels, which
    were treated as "no measurement"; it is 0 for frames skipped by stride or
    motion, whose depth is not looked at.
    """

    integrated: bool
    reason: str
    duration_ms: float
    new_blocks: int = 0
    invalid_depth_pixels: int = 0
    decimation: int = 1
    """The pixel step the frame was integrated at (:func:`integration_decimation`)."""


def resolve_device(requested: str) -> str:
    """The Open3D device for ``MappingConfig.device``: 'auto' picks 'CUDA:0' when Open3D has CUDA, else 'CPU:0'."""
    cuda = o3c.cuda.is_available()
    if requested == 'auto':
        return 'CUDA:0' if cuda else 'CPU:0'
    if requested.startswith('CUDA') and not cuda:
        raise ValueError(
            f'MappingConfig.device={requested!r}: this Open3D build or machine has no CUDA device; '
            f'use device auto or CPU:0'
        )
    return requested


class SceneMap:
    """A TSDF map of RGB-D frames (see the module docstring for frames, weights and threading)."""

    def __init__(self, config: MappingConfig) -> None:
        if not isinstance(config, MappingConfig):
            raise TypeError(f'config must be a MappingConfig, got {type(config).__name__}')
        self.config = config
        self.device = resolve_device(config.device)
        self._o3d_device = o3c.Device(self.device)
        self.bytes_per_block = config.block_resolution**3 * sum(ATTRIBUTE_CHANNELS) * _BYTES_PER_VALUE
        # Open3D keeps voxels with weight > threshold; weights are whole frame counts, so this keeps
        # "observed at least weight_threshold times".
        self._extract_threshold = max(math.ceil(config.weight_threshold) - 0.5, 0.0)
        self._grid = self._new_grid(config.initial_block_count)
        self._clear_state()

    # -- state ------------------------------------------------------------------------------------

    def _new_grid(self, block_count: int) -> o3d.t.geometry.VoxelBlockGrid:
        return o3d.t.geometry.VoxelBlockGrid(
            attr_names=ATTRIBUTES,
            attr_dtypes=(o3c.float32,) * len(ATTRIBUTES),
            attr_channels=ATTRIBUTE_CHANNELS,  # type: ignore[arg-type]  # Open3D takes ints; its stubs say SizeVector
            voxel_size=self.config.voxel_size_m,
            block_resolution=self.config.block_resolution,
            block_count=int(block_count),
            device=self._o3d_device,
        )

    def _clear_state(self, frames_integrated: int = 0) -> None:
        self._frames_integrated = frames_integrated
        self._motion = MotionGate(self.config.min_translation_m, self.config.min_rotation_deg, rotation_angle_deg)
        self._frames_since_integration = 0  # valid frames offered since then
        self._refused_full = 0  # consecutive 'map_full' refusals (for log throttling)
        self._expected_points = -1  # surface points the next extraction reserves room for (-1: count them)
        self._changed()

    def _changed(self) -> None:
        self._cache: dict[str, Any] = {}

    def cached(self, name: str, build: Callable[[], _T]) -> _T:
        """``build()``'s result, computed once per map state (what is read back from the map is cached so)."""
        if name not in self._cache:
            self._cache[name] = build()
        return self._cache[name]

    def reset(self) -> None:
        """Drop everything: an empty map, as after construction."""
        self._grid = self._new_grid(self.config.initial_block_count)
        self._clear_state()
        logger.info('map reset')

    @property
    def num_blocks(self) -> int:
        """Voxel blocks in the map."""
        return int(self._grid.hashmap().size())

    @property
    def memory_bytes(self) -> int:
        """Bytes of voxel data in the map: ``num_blocks * bytes_per_block`` (the hash map may reserve more)."""
        return self.num_blocks * self.bytes_per_block

    @property
    def frames_integrated(self) -> int:
        """Frames fused into the map since construction, reset or load (a loaded map counts its own)."""
        return self._frames_integrated

    # -- integration -------------------------------------------------------------------------------

    def integrate(
        self,
        color: npt.ArrayLike,
        depth: npt.ArrayLike,
        intrinsics: CameraIntrinsics,
        T_map_camera: npt.ArrayLike,
        depth_scale: float | None = None,
    ) -> IntegrationResult:
        """Fuse one frame, or say why not.

        ``depth``: the sensor's HxW uint16 image with ``depth_scale`` (units per
        metre, required), or HxW float32/float64 metres (``depth_scale`` None or 1).

        Raises ValueError (before touching the map) for malformed input: colour
        not HxWx3 uint8, depth not HxW uint16/float32/float64, colour and depth of
        different sizes, a size other than the intrinsics', a non-finite or
        non-rigid pose. NaN / inf / negative depth pixels are not errors: they
        count as no measurement (``invalid_depth_pixels``), as do pixels outside
        [depth_min_m, depth_max_m].

        Skipping, in this order (the first frame after construction, reset or
        load always passes both): after an integrated frame, the next
        ``integration_stride - 1`` well-formed frames are skipped ('stride');
        then, with ``min_translation_m`` or ``min_rotation_deg`` set, a frame
        that neither moved nor turned that much from the last integrated one is
        skipped ('below_motion_threshold'). A frame whose new voxel blocks
        would take the map past ``max_block_count`` is refused whole
        ('map_full', logged as a warning), so memory stays bounded; revisiting
        mapped space adds no blocks.
        """
        started = time.perf_counter()
        color, depth = _check_images(color, depth, intrinsics)
        depth_scale = _checked_depth_scale(depth, depth_scale)
        T_map_camera = check_rigid_transform(T_map_camera, 'T_map_camera')
        cfg = self.config

        def skipped(reason: str, new_blocks: int = 0, invalid: int = 0) -> IntegrationResult:
            self._frames_since_integration += 1
            return IntegrationResult(False, reason, (time.perf_counter() - started) * 1000.0, new_blocks, invalid)

        if self._motion.last_pose is not None:
            if self._frames_since_integration + 1 < cfg.integration_stride:
                return skipped('stride')
            if not self._motion.passes(T_map_camera):
                return skipped('below_motion_threshold')

        invalid = _invalid_pixels(depth)
        step = integration_decimation(cfg, intrinsics)
        color, depth, intrinsics = decimate_frame(color, depth, intrinsics, step)
        depth, depth_scale = self._clean_depth(depth, depth_scale)
        if not depth.any():
            return skipped('no_valid_depth', invalid=invalid)

        # uint16 depth + uint8 colour: Open3D integrates these about twice as fast as float images.
        device = self._o3d_device
        # Open3D's stubs omit the defaults of Tensor's dtype and device (taken from the array and the CPU).
        depth_image = o3d.t.geometry.Image(o3c.Tensor(depth)).to(device)  # type: ignore[call-overload]
        color_image = o3d.t.geometry.Image(o3c.Tensor(color)).to(device)  # type: ignore[call-overload]
        intrinsic = o3c.Tensor(intrinsics.matrix(), o3c.float64, device)
        extrinsic = o3c.Tensor(invert_transform(T_map_camera), o3c.float64, device)
        block_coords = self._grid.compute_unique_block_coordinates(
            depth_image, intrinsic, extrinsic, depth_scale, cfg.depth_max_m, cfg.truncation_voxels
        )
        _, found = self._grid.hashmap().find(block_coords)
        new_blocks = int(len(found) - np.count_nonzero(found.cpu().numpy()))
        if self.num_blocks + new_blocks > cfg.max_block_count:
            self._refused_full += 1
            log = logger.warning if self._refused_full == 1 or self._refused_full % 100 == 0 else logger.debug
            log(
                'frame refused: it would grow the map from %d by %d blocks, past max_block_count=%d '
                '(%d frames refused since the last integrated one)',
                self.num_blocks,
                new_blocks,
                cfg.max_block_count,
                self._refused_full,
            )
            return skipped('map_full', new_blocks, invalid)

        # Open3D reads the pixel at floor(u) for a voxel projecting to u; the ROS / OpenCV convention has pixel
        # centres at integers, i.e. the nearest pixel is floor(u + 0.5): shift the principal point by half a pixel.
        integrate_K = intrinsics.matrix()
        integrate_K[:2, 2] += 0.5
        self._grid.integrate(
            block_coords,
            depth_image,
            color_image,
            o3c.Tensor(integrate_K, o3c.float64, device),
            extrinsic,
            depth_scale,
            cfg.depth_max_m,
            cfg.truncation_voxels,
        )
        self._frames_integrated += 1
        self._motion.accept(T_map_camera)
        self._frames_since_integration = 0
        self._refused_full = 0
        self._changed()
        return IntegrationResult(
            True, 'integrated', (time.perf_counter() - started) * 1000.0, new_blocks, invalid, step
        )

    def _clean_depth(self, depth: np.ndarray, depth_scale: float) -> tuple[np.ndarray, float]:
        """Depth as Open3D takes it (uint16 in units of 1 / depth_scale m), 0 where invalid or outside
        [depth_min_m, depth_max_m], and its depth scale."""
        cfg = self.config
        if depth.dtype == np.uint16:  # compared in the sensor's own units: no float image
            lowest = math.ceil(cfg.depth_min_m * depth_scale - 1e-9)
            highest = math.floor(cfg.depth_max_m * depth_scale + 1e-9)
            keep = (depth >= lowest) & (depth <= highest)
            return np.where(keep, depth, np.uint16(0)), depth_scale
        with np.errstate(invalid='ignore', over='ignore'):
            keep = (depth >= cfg.depth_min_m) & (depth <= cfg.depth_max_m)
            millimetres = np.rint(np.where(keep, depth, 0.0) * _FLOAT_DEPTH_SCALE_PER_M)
        return millimetres.astype(np.uint16), _FLOAT_DEPTH_SCALE_PER_M

    # -- reading the surface back ------------------------------------------------------------------

    def point_cloud(self) -> tuple[np.ndarray, np.ndarray]:
        """Surface points: Nx3 float32 map coordinates and Nx3 uint8 RGB (read-only, cached until the map changes)."""
        points, colors, _ = self.surface()
        return points, colors

    def surface(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Surface points, colours (as :meth:`point_cloud`) and Nx3 float32 unit normals (TSDF gradient).

        Read-only arrays, cached until the map changes: taking them is the whole
        cost of a snapshot for a worker thread.
        """
        if 'cloud' not in self._cache:
            if self.num_blocks == 0:
                points, colors = np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
                normals = np.zeros((0, 3), np.float32)
            else:
                cloud = self._extract_point_cloud()
                points = np.ascontiguousarray(cloud.point.positions.cpu().numpy(), dtype=np.float32).reshape(-1, 3)
                colors = (
                    _to_uint8(cloud.point.colors.cpu().numpy())
                    if 'colors' in cloud.point
                    else np.zeros((len(points), 3), np.uint8)
                )
                normals = (
                    np.ascontiguousarray(cloud.point.normals.cpu().numpy(), dtype=np.float32).reshape(-1, 3)
                    if 'normals' in cloud.point
                    else np.zeros((len(points), 3), np.float32)
                )
                length = np.linalg.norm(normals, axis=1, keepdims=True)
                normals = np.where(length > 1e-9, normals / np.maximum(length, 1e-12), 0.0).astype(np.float32)
            for array in (points, colors, normals):
                array.flags.writeable = False
            self._cache['cloud'] = (points, colors, normals)
        return self._cache['cloud']

    def _extract_point_cloud(self) -> o3d.t.geometry.PointCloud:
        """Open3D's surface extraction, told how many points to expect: without a number it counts them in a
        first pass over every voxel (a third of its time). It silently stops at the number it is given, so a
        cloud that reached it is extracted again without one."""
        expected = self._expected_points
        cloud = self._grid.extract_point_cloud(self._extract_threshold, expected)
        if expected > 0 and len(cloud.point.positions) >= expected:
            cloud = self._grid.extract_point_cloud(self._extract_threshold, -1)
        self._expected_points = int(len(cloud.point.positions) * _SURFACE_HEADROOM) + 1024
        return cloud

    def mesh(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Surface mesh (marching cubes): vertices Nx3 float32, vertex colours Nx3 uint8, triangles Mx3 int32."""
        if 'mesh' not in self._cache:
            if self.num_blocks == 0:
                mesh = (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8), np.zeros((0, 3), np.int32))
            else:
                triangle_mesh = self._grid.extract_triangle_mesh(self._extract_threshold)
                vertices = triangle_mesh.vertex.positions.cpu().numpy().astype(np.float32).reshape(-1, 3)
                colors = (
                    _to_uint8(triangle_mesh.vertex.colors.cpu().numpy())
                    if 'colors' in triangle_mesh.vertex
                    else np.zeros((len(vertices), 3), np.uint8)
                )
                triangles = (
                    triangle_mesh.triangle.indices.cpu().numpy().astype(np.int32).reshape(-1, 3)
                    if 'indices' in triangle_mesh.triangle
                    else np.zeros((0, 3), np.int32)
                )
                mesh = (vertices, colors, triangles)
            for array in mesh:
                array.flags.writeable = False
            self._cache['mesh'] = mesh
        return self._cache['mesh']

    def _active_blocks(self) -> tuple[np.ndarray, np.ndarray]:
        """Block coordinates (Nx3 int32) and buffer indices (N int64) of the active blocks (cached)."""
        if 'blocks' not in self._cache:
            hashmap = self._grid.hashmap()
            buffer_indices = hashmap.active_buf_indices().to(o3c.int64)
            keys = hashmap.key_tensor()[buffer_indices].cpu().numpy().astype(np.int32).reshape(-1, 3)
            self._cache['blocks'] = (keys, buffer_indices.cpu().numpy())
        return self._cache['blocks']

    # -- blocks, for map files ---------------------------------------------------------------------

    def export_blocks(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Block keys (Nx3 int32) and each attribute's voxels (N x res x res x res x channels float32)."""
        keys, buffer_indices = self._active_blocks()
        index = o3c.Tensor(buffer_indices, o3c.int64, self._o3d_device)
        res = self.config.block_resolution
        attributes = {}
        for name, channels in zip(ATTRIBUTES, ATTRIBUTE_CHANNELS):
            values = (
                self._grid.attribute(name)[index].cpu().numpy()
                if len(keys)
                else np.zeros((0, res, res, res, channels), np.float32)
            )
            attributes[name] = values.reshape(len(keys), res, res, res, channels).astype(np.float32, copy=False)
        return keys.astype(np.int32), attributes

    def replace_blocks(self, keys: np.ndarray, attributes: dict[str, np.ndarray], frames_integrated: int) -> None:
        """Make the map exactly these blocks (checked by the caller, see :mod:`gpt4scene_ros.mapping.map_file`);
        ValueError, with the map unchanged, when Open3D does not take every block."""
        count = len(keys)
        grid = self._new_grid(max(self.config.initial_block_count, count))
        if count:
            device = self._o3d_device
            _, inserted = grid.hashmap().insert(
                o3c.Tensor(np.ascontiguousarray(keys, np.int32), o3c.int32, device),
                [o3c.Tensor(np.ascontiguousarray(attributes[name]), o3c.float32, device) for name in ATTRIBUTES],
            )
            if not np.all(inserted.cpu().numpy()):
                raise ValueError('could not insert every block')
        self._grid = grid
        self._clear_state(frames_integrated=frames_integrated)


# -- helpers --------------------------------------------------------------------------------------------


def _check_images(color: npt.ArrayLike, depth: npt.ArrayLike, intrinsics: object) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(intrinsics, CameraIntrinsics):
        raise TypeError(f'intrinsics must be CameraIntrinsics, got {type(intrinsics).__name__}')
    color = np.asarray(color)
    depth = np.asarray(depth)
    if color.dtype != np.uint8 or color.ndim != 3 or color.shape[2] != 3:
        raise ValueError(f'colour must be an HxWx3 uint8 RGB array, got {color.dtype} with shape {color.shape}')
    if depth.ndim != 2 or depth.dtype not in (np.uint16, np.float32, np.float64):
        raise ValueError(
            f'depth must be an HxW float32 or float64 array in metres, or uint16 with its depth_scale, '
            f'got {depth.dtype} with shape {depth.shape}'
        )
    if color.shape[:2] != depth.shape:
        raise ValueError(
            f'colour is {color.shape[1]}x{color.shape[0]} but depth is '
            f'{depth.shape[1]}x{depth.shape[0]}; they must be registered and of the same size'
        )
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(
            f'images are {depth.shape[1]}x{depth.shape[0]} but the intrinsics are for '
            f'{intrinsics.width}x{intrinsics.height}'
        )
    return np.ascontiguousarray(color), depth


def _invalid_pixels(depth: np.ndarray) -> int:
    """NaN, inf and negative pixels of a float depth image (uint16 has none)."""
    if depth.dtype == np.uint16:
        return 0
    with np.errstate(invalid='ignore'):
        return int(np.count_nonzero(~(depth >= 0.0)) + np.count_nonzero(depth == np.inf))


def _checked_depth_scale(depth: np.ndarray, depth_scale: object) -> float:
    if depth.dtype == np.uint16:
        if depth_scale is None:
            raise ValueError('uint16 depth needs its depth_scale (units per metre, e.g. 1000 for millimetres)')
        if (
            isinstance(depth_scale, bool)
            or not isinstance(depth_scale, (int, float, np.floating, np.integer))
            or not math.isfinite(depth_scale)
            or depth_scale <= 0
        ):
            raise ValueError(f'depth_scale must be a finite number > 0 (units per metre), got {depth_scale!r}')
        return float(depth_scale)
    if depth_scale not in (None, 1, 1.0):
        raise ValueError(f'float depth is in metres: depth_scale must be None or 1, got {depth_scale!r}')
    return 1.0


def _to_uint8(colors01: np.ndarray) -> np.ndarray:
    """Colours in [0, 1] (Open3D's output) as Nx3 uint8."""
    return np.clip(np.rint(np.asarray(colors01, np.float32).reshape(-1, 3) * 255.0), 0, 255).astype(np.uint8)
