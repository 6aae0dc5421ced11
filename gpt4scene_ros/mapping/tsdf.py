"""The TSDF map: RGB-D frames fused into an Open3D ``VoxelBlockGrid``, and what is read back from it.

:class:`SceneMap` fuses colour + depth frames with known camera poses into a
truncated signed distance field (TSDF) held in Open3D's tensor
``open3d.t.geometry.VoxelBlockGrid`` (attributes ``tsdf``, ``weight`` and
``color``, float32), on the CPU or a CUDA device. It gives back the surface as
a coloured point cloud, a triangle mesh, a bird's-eye view (:class:`~gpt4scene_ros.mapping.bev.BevImage`)
and ray-cast depth images, and saves/loads itself to/from a versioned file.

Frames and conventions (see :mod:`gpt4scene_ros.common.frames`):

- The map frame is whatever frame the poses are given in; the BEV assumes it
  is z-up (e.g. the gravity-aligned frame of
  :func:`gpt4scene_ros.mapping.gravity.estimate_gravity_alignment`, floor at z=0).
- ``T_map_camera`` is the pose of the optical camera (x right, y down,
  z forward) in the map: it maps camera points into the map frame.
- Colour is HxWx3 uint8 RGB; depth is HxW float32/float64 metres, 0 = no
  measurement. Depth reaches Open3D as uint16 millimetres (Open3D fuses those
  about twice as fast as float images; the rounding is far below a voxel).

Weights: every integration adds 1 to the weight of each voxel it updates, so a
voxel's weight counts the frames that observed it. ``weight_threshold`` keeps
voxels observed at least that many times in the cloud, mesh, BEV and ray casts.

Threading: a ``SceneMap`` is not thread-safe. One thread owns it (the
mapping node's single map-owner callback group); callers serialise access.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open3d as o3d
import open3d.core as o3c

from gpt4scene_ros.mapping.bev import BevImage, render_bev
from gpt4scene_ros.common.settings import MappingConfig
from gpt4scene_ros.common.transforms import invert_transform
from gpt4scene_ros.common.frames import CameraIntrinsics, check_rigid_transform

logger = logging.getLogger(__name__)

MAP_FILE_FORMAT = 'gpt4scene_ros.tsdf_map'
"""Value of the ``format`` entry that identifies a map file."""
MAP_FILE_VERSION = 1
"""Version of the map file layout written by :meth:`SceneMap.save`; :meth:`SceneMap.load` reads only this one."""

REASONS = ('integrated', 'no_valid_depth', 'below_motion_threshold', 'stride', 'map_full')
"""Every ``IntegrationResult.reason``."""

_ATTRIBUTES = ('tsdf', 'weight', 'color')
_ATTRIBUTE_CHANNELS = (1, 1, 3)
_BYTES_PER_VALUE = 4                 # all attributes are float32
_DEPTH_SCALE_PER_M = 1000.0          # depth goes to Open3D as uint16 millimetres


class MapFileError(ValueError):
    """A map file cannot be loaded (missing, unreadable, corrupt, or made with incompatible settings)."""


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


def resolve_device(requested: str) -> str:
    """The Open3D device for ``MappingConfig.device``: 'auto' picks 'CUDA:0' when Open3D has CUDA, else 'CPU:0'."""
    cuda = o3c.cuda.is_available()
    if requested == 'auto':
        return 'CUDA:0' if cuda else 'CPU:0'
    if requested.startswith('CUDA') and not cuda:
        raise ValueError(f'MappingConfig.device={requested!r}: this Open3D build or machine has no CUDA device; '
                         f'use device auto or CPU:0')
    return requested


class SceneMap:
    """A TSDF map of RGB-D frames (see the module docstring for frames, weights and threading)."""

    def __init__(self, config: MappingConfig):
        if not isinstance(config, MappingConfig):
            raise TypeError(f'config must be a MappingConfig, got {type(config).__name__}')
        self.config = config
        self.device = resolve_device(config.device)
        self._o3d_device = o3c.Device(self.device)
        self.bytes_per_block = config.block_resolution ** 3 * sum(_ATTRIBUTE_CHANNELS) * _BYTES_PER_VALUE
        # Open3D keeps voxels with weight > threshold; weights are whole frame counts, so this keeps
        # "observed at least weight_threshold times".
        self._extract_threshold = max(math.ceil(config.weight_threshold) - 0.5, 0.0)
        self._grid = self._new_grid(config.initial_block_count)
        self._clear_state()

    # -- state ------------------------------------------------------------------------------------

    def _new_grid(self, block_count: int):
        return o3d.t.geometry.VoxelBlockGrid(
            attr_names=_ATTRIBUTES, attr_dtypes=(o3c.float32,) * len(_ATTRIBUTES),
            attr_channels=_ATTRIBUTE_CHANNELS, voxel_size=self.config.voxel_size_m,
            block_resolution=self.config.block_resolution, block_count=int(block_count), device=self._o3d_device)

    def _clear_state(self, frames_integrated: int = 0):
        self._frames_integrated = frames_integrated
        self._last_pose = None              # T_map_camera of the last integrated frame
        self._frames_since_integration = 0  # valid frames offered since then
        self._refused_full = 0              # consecutive 'map_full' refusals (for log throttling)
        self._changed()

    def _changed(self):
        self._cache = {}

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

    def integrate(self, color, depth_m, intrinsics: CameraIntrinsics, T_map_camera) -> IntegrationResult:
        """Fuse one frame, or say why not.

        Raises ValueError (before touching the map) for malformed input: colour
        not HxWx3 uint8, depth not HxW float32/float64, colour and depth of
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
        color, depth_m = _check_images(color, depth_m, intrinsics)
        T_map_camera = check_rigid_transform(T_map_camera, 'T_map_camera')
        cfg = self.config

        def skipped(reason, new_blocks=0, invalid=0):
            self._frames_since_integration += 1
            return IntegrationResult(False, reason, (time.perf_counter() - started) * 1000.0, new_blocks, invalid)

        if self._last_pose is not None:
            if self._frames_since_integration + 1 < cfg.integration_stride:
                return skipped('stride')
            if not self._moved_enough(T_map_camera):
                return skipped('below_motion_threshold')

        depth_mm, invalid = self._clean_depth(depth_m)
        if not depth_mm.any():
            return skipped('no_valid_depth', invalid=invalid)

        # uint16 millimetres + uint8 colour: Open3D integrates these about twice as fast as float images.
        device = self._o3d_device
        depth_image = o3d.t.geometry.Image(o3c.Tensor(depth_mm)).to(device)
        color_image = o3d.t.geometry.Image(o3c.Tensor(color)).to(device)
        intrinsic = o3c.Tensor(intrinsics.matrix(), o3c.float64, device)
        extrinsic = o3c.Tensor(invert_transform(T_map_camera), o3c.float64, device)
        block_coords = self._grid.compute_unique_block_coordinates(
            depth_image, intrinsic, extrinsic, _DEPTH_SCALE_PER_M, cfg.depth_max_m, cfg.truncation_voxels)
        _, found = self._grid.hashmap().find(block_coords)
        new_blocks = int(len(found) - np.count_nonzero(found.cpu().numpy()))
        if self.num_blocks + new_blocks > cfg.max_block_count:
            self._refused_full += 1
            log = logger.warning if self._refused_full == 1 or self._refused_full % 100 == 0 else logger.debug
            log('frame refused: it would grow the map from %d by %d blocks, past max_block_count=%d '
                '(%d frames refused since the last integrated one)', self.num_blocks, new_blocks,
                cfg.max_block_count, self._refused_full)
            return skipped('map_full', new_blocks, invalid)

        # Open3D reads the pixel at floor(u) for a voxel projecting to u; the ROS / OpenCV convention has pixel
        # centres at integers, i.e. the nearest pixel is floor(u + 0.5): shift the principal point by half a pixel.
        integrate_K = intrinsics.matrix()
        integrate_K[:2, 2] += 0.5
        self._grid.integrate(block_coords, depth_image, color_image, o3c.Tensor(integrate_K, o3c.float64, device),
                             extrinsic, _DEPTH_SCALE_PER_M, cfg.depth_max_m, cfg.truncation_voxels)
        self._frames_integrated += 1
        self._last_pose = T_map_camera
        self._frames_since_integration = 0
        self._refused_full = 0
        self._changed()
        return IntegrationResult(True, 'integrated', (time.perf_counter() - started) * 1000.0, new_blocks, invalid)

    def _moved_enough(self, T_map_camera: np.ndarray) -> bool:
        cfg = self.config
        if cfg.min_translation_m <= 0.0 and cfg.min_rotation_deg <= 0.0:
            return True
        last = self._last_pose
        if cfg.min_translation_m > 0.0 and \
                np.linalg.norm(T_map_camera[:3, 3] - last[:3, 3]) >= cfg.min_translation_m:
            return True
        if cfg.min_rotation_deg > 0.0:
            cos_angle = (np.trace(last[:3, :3].T @ T_map_camera[:3, :3]) - 1.0) / 2.0
            if math.degrees(math.acos(min(1.0, max(-1.0, cos_angle)))) >= cfg.min_rotation_deg:
                return True
        return False

    def _clean_depth(self, depth_m: np.ndarray) -> tuple[np.ndarray, int]:
        """Depth as uint16 millimetres, 0 where invalid or outside [depth_min_m, depth_max_m], and the count of
        NaN / inf / negative pixels."""
        with np.errstate(invalid='ignore', over='ignore'):
            invalid = int(np.count_nonzero(~(depth_m >= 0.0)) + np.count_nonzero(depth_m == np.inf))
            keep = (depth_m >= self.config.depth_min_m) & (depth_m <= self.config.depth_max_m)
            millimetres = np.rint(np.where(keep, depth_m, 0.0) * _DEPTH_SCALE_PER_M)
        return millimetres.astype(np.uint16), invalid

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
                cloud = self._grid.extract_point_cloud(self._extract_threshold)
                points = np.ascontiguousarray(cloud.point.positions.cpu().numpy(), dtype=np.float32).reshape(-1, 3)
                colors = _to_uint8(cloud.point.colors.cpu().numpy()) if 'colors' in cloud.point \
                    else np.zeros((len(points), 3), np.uint8)
                normals = np.ascontiguousarray(cloud.point.normals.cpu().numpy(), dtype=np.float32).reshape(-1, 3) \
                    if 'normals' in cloud.point else np.zeros((len(points), 3), np.float32)
                length = np.linalg.norm(normals, axis=1, keepdims=True)
                normals = np.where(length > 1e-9, normals / np.maximum(length, 1e-12), 0.0).astype(np.float32)
            for array in (points, colors, normals):
                array.flags.writeable = False
            self._cache['cloud'] = (points, colors, normals)
        return self._cache['cloud']

    def mesh(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Surface mesh (marching cubes): vertices Nx3 float32, vertex colours Nx3 uint8, triangles Mx3 int32."""
        if 'mesh' not in self._cache:
            if self.num_blocks == 0:
                mesh = (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8), np.zeros((0, 3), np.int32))
            else:
                triangle_mesh = self._grid.extract_triangle_mesh(self._extract_threshold)
                vertices = triangle_mesh.vertex.positions.cpu().numpy().astype(np.float32).reshape(-1, 3)
                colors = _to_uint8(triangle_mesh.vertex.colors.cpu().numpy()) if 'colors' in triangle_mesh.vertex \
                    else np.zeros((len(vertices), 3), np.uint8)
                triangles = triangle_mesh.triangle.indices.cpu().numpy().astype(np.int32).reshape(-1, 3) \
                    if 'indices' in triangle_mesh.triangle else np.zeros((0, 3), np.int32)
                mesh = (vertices, colors, triangles)
            for array in mesh:
                array.flags.writeable = False
            self._cache['mesh'] = mesh
        return self._cache['mesh']

    def render_bev(self) -> BevImage:
        """Top-down view of the surface below ``bev_max_height_m`` (see :func:`gpt4scene_ros.mapping.bev.render_bev`)."""
        cfg = self.config
        points, colors = self.point_cloud()
        return render_bev(points, colors, size_px=cfg.bev_size_px, max_height_m=cfg.bev_max_height_m,
                          margin_m=cfg.bev_margin_m, voxel_size_m=cfg.voxel_size_m)

    def render_depth(self, intrinsics: CameraIntrinsics, T_map_camera) -> np.ndarray:
        """Depth (HxW float32 metres, 0 = no surface) of the map seen from a camera, ray cast from the TSDF.

        The rays (through pixel centres at integer coordinates, the ROS / OpenCV
        convention) are cast against the TSDF's zero-level surface, i.e. the
        marching-cubes :meth:`mesh` of the voxels observed at least
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
        scene = self._raycasting_scene()
        if scene is None:
            return np.zeros((height, width), np.float32)
        u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
        # Directions with camera z = 1, so the hit distance along them is the depth.
        directions = np.stack([(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy,
                               np.ones_like(u)], axis=-1) @ T_map_camera[:3, :3].T
        rays = np.empty((height, width, 6), np.float32)
        rays[..., :3] = T_map_camera[:3, 3]
        rays[..., 3:] = directions
        hit = scene.cast_rays(o3c.Tensor(rays))['t_hit'].numpy()
        with np.errstate(invalid='ignore'):
            valid = np.isfinite(hit) & (hit >= self.config.depth_min_m) & (hit <= self.config.depth_max_m)
        return np.where(valid, hit, 0.0).astype(np.float32)

    def _raycasting_scene(self):
        """Embree scene of the current mesh (cached until the map changes); None for an empty mesh."""
        if 'raycasting_scene' not in self._cache:
            vertices, _, triangles = self.mesh()
            scene = None
            if len(triangles):
                scene = o3d.t.geometry.RaycastingScene()
                scene.add_triangles(o3c.Tensor(np.ascontiguousarray(vertices, np.float32)),
                                    o3c.Tensor(np.ascontiguousarray(triangles, np.uint32)))
            self._cache['raycasting_scene'] = scene
        return self._cache['raycasting_scene']

    def _active_blocks(self) -> tuple[np.ndarray, np.ndarray]:
        """Block coordinates (Nx3 int32) and buffer indices (N int64) of the active blocks (cached)."""
        if 'blocks' not in self._cache:
            hashmap = self._grid.hashmap()
            buffer_indices = hashmap.active_buf_indices().to(o3c.int64)
            keys = hashmap.key_tensor()[buffer_indices].cpu().numpy().astype(np.int32).reshape(-1, 3)
            self._cache['blocks'] = (keys, buffer_indices.cpu().numpy())
        return self._cache['blocks']

    # -- files -------------------------------------------------------------------------------------

    def save(self, path, metadata: dict | None = None, arrays: dict | None = None) -> None:
        """Write the map to ``path`` atomically (a temporary file in the same folder, fsync, rename).

        ``metadata`` is any JSON-serialisable dict (e.g. ``T_map_world``), returned by :meth:`load`;
        ``arrays`` (name -> numpy array, no objects) are stored beside it (e.g. what the object layer needs
        to rebuild the same instances) and returned by ``load(path, arrays=True)``.
        A failed save leaves any previous file at ``path`` as it was and no temporary file behind;
        it raises OSError (e.g. an unwritable folder) or ValueError (metadata not JSON-serialisable).
        """
        path = Path(path)
        metadata = {} if metadata is None else metadata
        if not isinstance(metadata, dict):
            raise ValueError(f'metadata must be a dict, got {type(metadata).__name__}')
        try:
            metadata_json = json.dumps(metadata)
        except (TypeError, ValueError) as error:
            raise ValueError(f'metadata is not JSON-serialisable: {error}') from None
        keys, buffer_indices = self._active_blocks()
        index = o3c.Tensor(buffer_indices, o3c.int64, self._o3d_device)
        res = self.config.block_resolution
        entries = {
            'format': np.array(MAP_FILE_FORMAT), 'version': np.array(MAP_FILE_VERSION, np.int64),
            'voxel_size_m': np.array(self.config.voxel_size_m, np.float64),
            'block_resolution': np.array(res, np.int64),
            'truncation_voxels': np.array(self.config.truncation_voxels, np.float64),
            'frames_integrated': np.array(self._frames_integrated, np.int64),
            'metadata': np.array(metadata_json), 'block_keys': keys.astype(np.int32),
        }
        for name, value in (arrays or {}).items():
            value = np.asarray(value)
            if value.dtype.kind not in 'biuf':
                raise ValueError(f'array {name!r} is {value.dtype}; only numeric arrays can be saved')
            entries[f'{_EXTRA_PREFIX}{name}'] = value
        for name, channels in zip(_ATTRIBUTES, _ATTRIBUTE_CHANNELS):
            values = self._grid.attribute(name)[index].cpu().numpy() if len(keys) else \
                np.zeros((0, res, res, res, channels), np.float32)
            entries[name] = values.reshape(len(keys), res, res, res, channels).astype(np.float32, copy=False)
        _write_atomically(path, entries)
        logger.info('saved %d blocks to %s', len(keys), path)

    def load(self, path, arrays: bool = False):
        """Replace the map by the one saved at ``path`` and return its metadata (with ``arrays``: a tuple of
        the metadata and the extra arrays saved with it).

        Raises MapFileError (the current map stays as it was) when the file is
        missing, unreadable, corrupt, of another format version, or made with a
        different voxel size or block resolution, or holds more blocks than
        ``max_block_count``.
        """
        path = Path(path)
        res = self.config.block_resolution
        block_bytes = res ** 3 * sum(_ATTRIBUTE_CHANNELS) * 4 + 12
        data, extra = _read_map_file(path, self.config.max_block_count * block_bytes + _EXTRA_BYTES_BUDGET)
        self._check_compatible(path, data)
        frames_integrated = _scalar(path, data, 'frames_integrated', 'iu')
        if frames_integrated < 0:
            raise MapFileError(f'{path}: frames_integrated is {frames_integrated}, expected >= 0')
        keys = data['block_keys']
        count = len(keys)
        if count > self.config.max_block_count:
            raise MapFileError(f'{path}: holds {count} blocks, more than max_block_count='
                               f'{self.config.max_block_count}')
        for name, channels in zip(_ATTRIBUTES, _ATTRIBUTE_CHANNELS):
            expected = (count, res, res, res, channels)
            if data[name].shape != expected or data[name].dtype != np.float32:
                raise MapFileError(f'{path}: {name} is {data[name].dtype} {data[name].shape}, expected float32 '
                                   f'{expected}')
            if not np.all(np.isfinite(data[name])):
                raise MapFileError(f'{path}: {name} has NaN or infinite values')
        if count and len(np.unique(keys, axis=0)) != count:
            raise MapFileError(f'{path}: block keys are not unique')
        try:
            metadata = json.loads(str(data['metadata']))
        except ValueError as error:
            raise MapFileError(f'{path}: metadata is not valid JSON ({error})') from None
        if not isinstance(metadata, dict):
            raise MapFileError(f'{path}: metadata is a {type(metadata).__name__}, expected a JSON object')

        grid = self._new_grid(max(self.config.initial_block_count, count))
        if count:
            device = self._o3d_device
            _, inserted = grid.hashmap().insert(
                o3c.Tensor(keys, o3c.int32, device),
                [o3c.Tensor(np.ascontiguousarray(data[name]), o3c.float32, device) for name in _ATTRIBUTES])
            if not np.all(inserted.cpu().numpy()):
                raise MapFileError(f'{path}: could not insert every block')
        self._grid = grid
        self._clear_state(frames_integrated=frames_integrated)
        logger.info('loaded %d blocks from %s', count, path)
        return (metadata, extra) if arrays else metadata

    def _check_compatible(self, path: Path, data: dict) -> None:
        if _scalar(path, data, 'format', 'U') != MAP_FILE_FORMAT:
            raise MapFileError(f'{path}: not a gpt4scene_ros map file (format {str(data["format"])[:40]!r})')
        _scalar(path, data, 'metadata', 'U')
        version = _scalar(path, data, 'version', 'iu')
        if version != MAP_FILE_VERSION:
            raise MapFileError(f'{path}: map file version {version}; this build reads version {MAP_FILE_VERSION}')
        voxel = _scalar(path, data, 'voxel_size_m', 'f')
        if not math.isclose(voxel, self.config.voxel_size_m, rel_tol=1e-9, abs_tol=1e-12):
            raise MapFileError(f'{path}: voxel size {voxel} m differs from this map\'s voxel_size_m='
                               f'{self.config.voxel_size_m}')
        resolution = _scalar(path, data, 'block_resolution', 'iu')
        if resolution != self.config.block_resolution:
            raise MapFileError(f'{path}: block resolution {resolution} differs from this map\'s block_resolution='
                               f'{self.config.block_resolution}')
        keys = data['block_keys']
        if keys.ndim != 2 or keys.shape[1] != 3 or keys.dtype != np.int32:
            raise MapFileError(f'{path}: block_keys is {keys.dtype} {keys.shape}, expected int32 Nx3')


_EXTRA_PREFIX = 'extra_'
_FILE_ENTRIES = ('format', 'version', 'voxel_size_m', 'block_resolution', 'truncation_voxels', 'frames_integrated',
                 'metadata', 'block_keys') + _ATTRIBUTES


def _scalar(path: Path, data: dict, name: str, kinds: str):
    """A header entry as a Python scalar, refused unless it is a single value of the expected kind."""
    value = data[name]
    if value.ndim != 0 or value.dtype.kind not in kinds:
        raise MapFileError(f'{path}: {name} is {value.dtype} {value.shape}, expected one '
                           f'{ {"iu": "integer", "f": "float", "U": "string"}[kinds] }')
    scalar = value.item()
    if kinds == 'f' and not math.isfinite(scalar):
        raise MapFileError(f'{path}: {name} is {scalar}')
    return scalar


_EXTRA_BYTES_BUDGET = 512 * 1024 * 1024     # keys, metadata and the instance layer's arrays, beyond the blocks


def _check_archive(path: Path, budget_bytes: int) -> None:
    """Before any array is read: a zip whose members hold plain arrays that fit the budget.

    Each member's .npy header is read alone, so a file that declares a huge array (or a zip bomb) is refused
    instead of being allocated."""
    if not zipfile.is_zipfile(path):
        raise MapFileError(f'{path}: not a readable map file (not a zip archive: truncated or corrupt?)')
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            total += info.file_size
            if total > budget_bytes:
                raise MapFileError(f'{path}: its arrays take more than {budget_bytes / 1e6:.0f} MB unpacked, more '
                                   'than a map of max_block_count blocks')
            if not info.filename.endswith('.npy'):
                continue
            with archive.open(info) as stream:
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
                else:
                    raise MapFileError(f'{path}: {info.filename} has .npy format {version}')
            if dtype.hasobject:
                raise MapFileError(f'{path}: {info.filename} holds Python objects (refused: loading them could '
                                   'run code)')
            if math.prod(shape) * dtype.itemsize > info.file_size:
                raise MapFileError(f'{path}: {info.filename} declares {shape} {dtype} but holds '
                                   f'{info.file_size} bytes (truncated or corrupt)')


def _read_map_file(path: Path, budget_bytes: int) -> tuple[dict, dict]:
    if not path.exists():
        raise MapFileError(f'{path}: map file does not exist')
    if not path.is_file():
        raise MapFileError(f'{path}: is not a file')
    try:
        _check_archive(path, budget_bytes)
        with np.load(path, allow_pickle=False) as npz:
            missing = [name for name in _FILE_ENTRIES if name not in npz.files]
            if missing:
                raise MapFileError(f'{path}: not a gpt4scene_ros map file (missing {", ".join(missing)})')
            extra = {name[len(_EXTRA_PREFIX):]: npz[name] for name in npz.files if name.startswith(_EXTRA_PREFIX)}
            return {name: npz[name] for name in _FILE_ENTRIES}, extra
    except MapFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, NotImplementedError, RuntimeError,
            TypeError) as error:  # zipfile raises NotImplementedError / RuntimeError for odd or encrypted members
        raise MapFileError(f'{path}: not a readable map file (truncated or corrupt?): {error}') from None


def _write_atomically(path: Path, arrays: dict) -> None:
    folder = path.parent if str(path.parent) else Path('.')
    descriptor, temporary = tempfile.mkstemp(prefix=f'.{path.name}.{os.getpid()}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(descriptor, 'wb') as stream:
            np.savez(stream, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        directory = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)


# -- helpers --------------------------------------------------------------------------------------------


def _check_images(color, depth_m, intrinsics) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(intrinsics, CameraIntrinsics):
        raise TypeError(f'intrinsics must be CameraIntrinsics, got {type(intrinsics).__name__}')
    color = np.asarray(color)
    depth_m = np.asarray(depth_m)
    if color.dtype != np.uint8 or color.ndim != 3 or color.shape[2] != 3:
        raise ValueError(f'colour must be an HxWx3 uint8 RGB array, got {color.dtype} with shape {color.shape}')
    if depth_m.ndim != 2 or depth_m.dtype not in (np.float32, np.float64):
        raise ValueError(f'depth must be an HxW float32 or float64 array in metres, got {depth_m.dtype} with shape '
                         f'{depth_m.shape}')
    if color.shape[:2] != depth_m.shape:
        raise ValueError(f'colour is {color.shape[1]}x{color.shape[0]} but depth is '
                         f'{depth_m.shape[1]}x{depth_m.shape[0]}; they must be registered and of the same size')
    if depth_m.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(f'images are {depth_m.shape[1]}x{depth_m.shape[0]} but the intrinsics are for '
                         f'{intrinsics.width}x{intrinsics.height}')
    return np.ascontiguousarray(color), depth_m


def _to_uint8(colors01: np.ndarray) -> np.ndarray:
    """Colours in [0, 1] (Open3D's output) as Nx3 uint8."""
    return np.clip(np.rint(np.asarray(colors01, np.float32).reshape(-1, 3) * 255.0), 0, 255).astype(np.uint8)
