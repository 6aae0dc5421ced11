"""Procedural synthetic indoor RGB-D scene with ground truth, written in the 7-Scenes layout.

The scene is generated from a seed, needs no downloads, and comes with exact
ground truth, so the mapping, BEV and instance stages can be tested end to end.

World frame: gravity-aligned, z up, floor at z = 0, metres, room centred on the
origin in x and y. The room's walls run along x and y unless ``room_yaw_deg``
turns the whole room (geometry and camera path) about z; chairs and free-standing
floor objects get a random yaw up to ``furniture_yaw_deg``. Each ground-truth box
is the tight box of the object's mesh in its own yaw (``yaw`` about z, radians).

``clutter`` sets how hard the scene is to segment: ``none`` (objects stand apart:
furniture, a ball, loose boxes, mugs and a bottle on the table), ``standard``
(plus flat objects, a touching pair and a stack) and ``heavy`` (more of each: more
tabletop items, a touching pair of small items, a book stack, objects on the
cabinet, a second touching pair, a stack of three, look-alike colours for some
touching or stacked objects).

Output folder (one per sequence)::

    camera-intrinsics.txt           3x3 K (np.savetxt)
    instances.json                  ground truth (objects, intrinsics, noise, T_map_world)
    frame-XXXXXX.color.jpg          8-bit colour (cv2.imread + BGR->RGB gives RGB)
    frame-XXXXXX.depth.png          uint16 millimetres, 0 = no measurement
    frame-XXXXXX.pose.txt           4x4 T_world_camera (optical convention: x right, y down, z forward)
    frame-XXXXXX.instance.png       uint16 instance id per pixel (0 = room structure or no hit)

Depth sensor model (``depth_noise=True``): Gaussian noise along the ray with
``sigma(z) = noise_sigma_base_m + noise_sigma_quadratic_per_m * (z - noise_sigma_offset_m)^2``,
random dropout of ``dropout_fraction`` of the pixels, dropout where the cosine
between ray and surface normal is below ``grazing_dropout_cos``. The working
range ``[min_depth_m, max_depth_m]`` always applies; with ``depth_noise=False``
depth is otherwise exact. The instance image is geometric ground truth and does
not follow depth dropout.

Command line: ``gpt4scene-make-scene OUT_DIR [--seed N] [--frames N] [--no-noise] [--width W] [--height H]
[--clutter none|standard|heavy] [--chairs N] [--room-yaw DEG] [--furniture-yaw DEG]``.
"""

from __future__ import annotations

import argparse
import collections
import colorsys
import dataclasses
import json
import logging
import math
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d

from gpt4scene_ros.common.settings import check_settings, setting
from gpt4scene_ros.common.frames import CameraIntrinsics, check_rigid_transform

logger = logging.getLogger(__name__)

GENERATOR_NAME = 'gpt4scene_ros.sim.synthetic_scene'
"""Value of ``generator`` in ``instances.json``; marks a folder this module may overwrite."""

GROUND_TRUTH_FILE = 'instances.json'
INTRINSICS_FILE = 'camera-intrinsics.txt'
DEPTH_SCALE_PER_M = 1000.0
"""Depth PNG units per metre (millimetres, as in 7-Scenes)."""

STRUCTURE_INSTANCE_ID = 0
TAGS = ('small', 'flat', 'touching', 'stacked', 'furniture')

_GENERATED_FILE = re.compile(
    r'(frame-\d{6}\.(color\.jpg|depth\.png|pose\.txt|instance\.png)|'
    + re.escape(INTRINSICS_FILE) + '|' + re.escape(GROUND_TRUTH_FILE) + ')')

# Independent random streams derived from the seed, so that e.g. changing the
# number of frames does not change the layout.
_STREAM_LAYOUT = 1
_STREAM_CAMERA = 2
_STREAM_SENSOR = 3
_STREAM_TEXTURE = 4

_MAX_PLACEMENT_TRIES = 2000
_WALL_GAP_M = 0.01
"""Gap between wall-standing furniture and the wall (avoids coincident faces)."""
_TALLEST_LOW_OBJECT_M = 1.1
"""All objects away from the walls stay below this height; the camera stays above it."""
_DEEPEST_WALL_OBJECT_M = 0.46
"""Wall-standing objects reach at most this far into the room (plus ``_WALL_GAP_M``)."""
_CLUTTER_WALL_GAP_M = (0.05, 0.3)
"""Floor clutter stands this far from a wall."""
_MIN_ROOM_X_M = 4.5
_MIN_ROOM_Y_M = 4.0
_MAX_ROOM_M = 10.0
_MAX_STORABLE_DEPTH_M = np.iinfo(np.uint16).max / DEPTH_SCALE_PER_M
"""Farthest depth a uint16 millimetre PNG can hold, metres."""
CLUTTER_LEVELS = ('none', 'standard', 'heavy')


@dataclass(frozen=True)
class SyntheticSceneConfig:
    """Everything that determines a synthetic sequence; validated on construction."""

    seed: int = setting(0, 'Seed of the layout, textures, camera path and sensor noise.',
                        minimum=0, maximum=2**63 - 1)
    num_frames: int = setting(300, 'Number of frames along one loop of the camera path.',
                              minimum=1, maximum=1_000_000)
    width: int = setting(640, 'Image width in pixels.', minimum=16, maximum=8192)
    height: int = setting(480, 'Image height in pixels.', minimum=16, maximum=8192)
    fx: float = setting(525.0, 'Focal length along x in pixels.', greater_than=0.0)
    fy: float = setting(525.0, 'Focal length along y in pixels.', greater_than=0.0)
    cx: float = setting(319.5, 'Principal point x in pixels (pixel centres at integer coordinates); '
                        'at most width.', minimum=0.0)
    cy: float = setting(239.5, 'Principal point y in pixels (pixel centres at integer coordinates); '
                        'at most height.', minimum=0.0)
    depth_noise: bool = setting(True, 'Simulate depth noise and dropout; off gives exact depth in range.')
    noise_sigma_base_m: float = setting(0.0012, 'Depth noise sigma at the offset depth, metres.',
                                        minimum=0.0, maximum=0.1)
    noise_sigma_quadratic_per_m: float = setting(
        0.0019, 'Quadratic growth of depth noise sigma: sigma += k (z - offset)^2, in 1/m.',
        minimum=0.0, maximum=0.1)
    noise_sigma_offset_m: float = setting(0.4, 'Depth at which the noise sigma is smallest, metres.',
                                          minimum=0.0, maximum=10.0)
    dropout_fraction: float = setting(0.01, 'Fraction of pixels randomly dropped (depth 0).',
                                      minimum=0.0, less_than=1.0)
    grazing_dropout_cos: float = setting(
        0.15, 'Drop depth where |cos| between ray and surface normal is below this.', minimum=0.0, less_than=1.0)
    min_depth_m: float = setting(0.3, 'Closest measurable depth, metres.', greater_than=0.0)
    max_depth_m: float = setting(4.5, 'Farthest measurable depth, metres; above min_depth_m and at most the '
                                 'largest depth a uint16 millimetre PNG holds.', maximum=_MAX_STORABLE_DEPTH_M)
    room_size_x_m: float = setting(5.0, 'Room length along world x, metres (the lower bound leaves room for '
                                   'the furniture).', minimum=_MIN_ROOM_X_M, maximum=_MAX_ROOM_M)
    room_size_y_m: float = setting(4.0, 'Room length along world y, metres (the lower bound leaves room for '
                                   'the furniture).', minimum=_MIN_ROOM_Y_M, maximum=_MAX_ROOM_M)
    room_height_m: float = setting(2.6, 'Floor-to-ceiling height, metres.', minimum=2.2, maximum=5.0)
    camera_height_m: float = setting(1.4, 'Mean camera height above the floor, metres; above the furniture '
                                     'and below the ceiling, including camera_bob_m.')
    camera_bob_m: float = setting(0.1, 'Amplitude of the vertical camera bob, metres.', minimum=0.0, maximum=0.3)
    camera_wall_margin_m: float = setting(0.75, 'Distance of the camera loop from the walls, metres; clear of '
                                          'the wall furniture, and small enough for the loop not to degenerate.')
    camera_look_aside_deg: float = setting(
        70.0, 'Largest camera yaw away from the room centre, degrees (objects at the walls are seen obliquely).',
        minimum=0.0, maximum=180.0)
    jpeg_quality: int = setting(95, 'JPEG quality of the colour images.', minimum=1, maximum=100)
    clutter: str = setting('standard', 'none: objects stand apart; standard: plus flat, touching and stacked '
                           'objects; heavy: more of each, objects on the cabinet, look-alike colours.',
                           choices=CLUTTER_LEVELS)
    num_chairs: int = setting(2, 'Chairs around the table.', minimum=1, maximum=4)
    room_yaw_deg: float = setting(0.0, 'Turn of the whole room (and camera path) about z, degrees: walls not '
                                  'along world x/y.', minimum=-180.0, maximum=180.0)
    furniture_yaw_deg: float = setting(0.0, 'Largest random yaw of chairs and free-standing floor objects, '
                                       'degrees.', minimum=0.0, maximum=45.0)

    def __post_init__(self):
        check_settings(self)

        def fail(name, rule):
            raise ValueError(f'SyntheticSceneConfig.{name}={getattr(self, name)!r}: must be {rule}')

        if self.cx > self.width:
            fail('cx', f'<= width={self.width}')
        if self.cy > self.height:
            fail('cy', f'<= height={self.height}')
        if self.max_depth_m <= self.min_depth_m:
            fail('max_depth_m', f'> min_depth_m={self.min_depth_m}')
        low = _TALLEST_LOW_OBJECT_M + 0.1 + self.camera_bob_m
        high = self.room_height_m - 0.3 - self.camera_bob_m
        if not low <= self.camera_height_m <= high:
            fail('camera_height_m', f'in [{low:.2f}, {high:.2f}] (above the furniture, below the ceiling, '
                                    f'including camera_bob_m={self.camera_bob_m})')
        low = _DEEPEST_WALL_OBJECT_M + _WALL_GAP_M + 0.1
        high = min(self.room_size_x_m, self.room_size_y_m) / 2 - 0.5
        if not low <= self.camera_wall_margin_m <= high:
            fail('camera_wall_margin_m', f'in [{low:.2f}, {high:.2f}] (clear of wall furniture, loop not degenerate; '
                                         f'room_size_x_m={self.room_size_x_m}, room_size_y_m={self.room_size_y_m})')

    @property
    def intrinsics(self) -> CameraIntrinsics:
        """Pinhole intrinsics of the rendered images."""
        return CameraIntrinsics(self.width, self.height, self.fx, self.fy, self.cx, self.cy)

    def with_resolution(self, width: int, height: int) -> 'SyntheticSceneConfig':
        """Return a copy rendering ``width`` x ``height`` images with the same field of view."""
        sx = width / self.width
        sy = height / self.height
        return dataclasses.replace(
            self, width=width, height=height, fx=self.fx * sx, fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5, cy=(self.cy + 0.5) * sy - 0.5)


# ---------------------------------------------------------------------------
# Scene description

@dataclass(frozen=True, eq=False)
class SceneObject:
    """One object instance: a triangle mesh in world coordinates plus its ground-truth record.

    ``aabb_min``/``aabb_max``/``center``/``size`` are the world axis-aligned bounds; :meth:`box` is the
    tight box in the object's own ``yaw`` (what ``instances.json`` reports).
    """

    id: int
    label: str
    tags: tuple[str, ...]
    base_color: tuple[int, int, int]
    vertices: np.ndarray = field(repr=False)
    triangles: np.ndarray = field(repr=False)
    touching_ids: tuple[int, ...] = ()
    """Objects in side-by-side contact (not support)."""
    on_top_of: int | None = None
    """Id of the object this one rests on, if any."""
    yaw: float = 0.0
    """Heading of the object's own axes about world z, radians."""

    def box(self) -> tuple[np.ndarray, np.ndarray, float]:
        """``(center, size, yaw)``: the tight box of the mesh in the object's own axes (world frame)."""
        local = self.vertices @ _yaw_matrix(-self.yaw).T
        lo, hi = local.min(axis=0), local.max(axis=0)
        return _yaw_matrix(self.yaw) @ ((lo + hi) / 2), hi - lo, self.yaw

    @property
    def aabb_min(self) -> np.ndarray:
        return self.vertices.min(axis=0)

    @property
    def aabb_max(self) -> np.ndarray:
        return self.vertices.max(axis=0)

    @property
    def center(self) -> np.ndarray:
        return (self.aabb_min + self.aabb_max) / 2

    @property
    def size(self) -> np.ndarray:
        return self.aabb_max - self.aabb_min

    def to_json(self) -> dict:
        """Ground-truth record as written to ``instances.json`` (the box of :meth:`box`)."""
        center, size, yaw = self.box()
        return {
            'id': self.id,
            'label': self.label,
            'center': [round(float(v), 6) for v in center],
            'size': [round(float(v), 6) for v in size],
            'yaw': round(float(yaw), 6),
            'tags': list(self.tags),
            'touching_ids': list(self.touching_ids),
            'on_top_of': self.on_top_of,
            'color_rgb': list(self.base_color),
        }


@dataclass(frozen=True, eq=False)
class StructureSurface:
    """A room surface (floor, wall or ceiling); instance id 0 in the renderings."""

    name: str
    base_color: tuple[int, int, int]
    vertices: np.ndarray = field(repr=False)
    triangles: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class _Poster:
    """A textured rectangle on a wall (texture only, no geometry)."""

    surface: str
    along_axis: int
    along_min: float
    along_max: float
    z_min: float
    z_max: float
    color_a: tuple[float, float, float]
    color_b: tuple[float, float, float]
    cell_m: float


@dataclass(frozen=True, eq=False)
class _RenderTables:
    """Per-geometry lookup tables (last row: ray missed everything)."""

    raycaster: o3d.t.geometry.RaycastingScene
    instance: np.ndarray
    color: np.ndarray
    checker_inv_cell: np.ndarray
    checker_inv_cell_z: np.ndarray
    checker_contrast: np.ndarray
    noise_amplitude: np.ndarray
    poster_geometry: tuple[int, ...]
    posters: tuple[_Poster, ...]
    lamp: np.ndarray


@dataclass(frozen=True, eq=False)
class SyntheticScene:
    """A built scene: objects, room structure and what ``render_frame`` needs to ray-cast it."""

    config: SyntheticSceneConfig
    room_min: np.ndarray
    room_max: np.ndarray
    """Bounds of the room in its own frame (walls along its x and y); see ``T_world_room``."""
    objects: tuple[SceneObject, ...]
    structure: tuple[StructureSurface, ...]
    render_tables: _RenderTables = field(repr=False)

    def object_by_id(self, instance_id: int) -> SceneObject:
        """Return the object with ``instance_id``; raises KeyError for an unknown id."""
        for obj in self.objects:
            if obj.id == instance_id:
                return obj
        raise KeyError(f'no object with id {instance_id} (ids 1..{len(self.objects)})')

    def ground_truth(self) -> dict:
        """Return the JSON-serialisable content of ``instances.json``."""
        config = self.config
        return {
            'generator': GENERATOR_NAME,
            'format_version': 1,
            'seed': config.seed,
            'num_frames': config.num_frames,
            'frame_id': 'world',
            'up_axis': [0.0, 0.0, 1.0],
            'T_map_world': np.eye(4).tolist(),
            'intrinsics': {
                'width': config.width, 'height': config.height, 'fx': config.fx, 'fy': config.fy,
                'cx': config.cx, 'cy': config.cy, 'K': config.intrinsics.matrix().tolist()},
            'depth': {
                'scale_per_m': DEPTH_SCALE_PER_M, 'min_depth_m': config.min_depth_m,
                'max_depth_m': config.max_depth_m},
            'noise': {
                'enabled': config.depth_noise,
                'model': 'sigma(z) = sigma_base_m + sigma_quadratic_per_m * (z - sigma_offset_m)^2',
                'sigma_base_m': config.noise_sigma_base_m,
                'sigma_quadratic_per_m': config.noise_sigma_quadratic_per_m,
                'sigma_offset_m': config.noise_sigma_offset_m,
                'dropout_fraction': config.dropout_fraction,
                'grazing_dropout_cos': config.grazing_dropout_cos},
            'room': {
                'min': self.room_min.tolist(), 'max': self.room_max.tolist(),
                'T_world_room': room_pose(config).tolist(),
                'structure_instance_id': STRUCTURE_INSTANCE_ID,
                'surfaces': [surface.name for surface in self.structure]},
            'config': dataclasses.asdict(config),
            'objects': [obj.to_json() for obj in self.objects],
        }


# ---------------------------------------------------------------------------
# Mesh primitives (vertices float64 Nx3, triangles int32 Mx3, outward winding)

_BOX_QUADS = ((0, 4, 6, 2), (1, 3, 7, 5), (0, 1, 5, 4), (2, 6, 7, 3), (0, 2, 3, 1), (4, 5, 7, 6))


def _box(lo, hi):
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    corners = np.array([[(hi if (k >> axis) & 1 else lo)[axis] for axis in range(3)] for k in range(8)])
    triangles = [tri for a, b, c, d in _BOX_QUADS for tri in ((a, b, c), (a, c, d))]
    return corners, np.array(triangles, dtype=np.int32)


def _cylinder(x, y, z0, z1, radius, segments=32):
    angles = 2 * np.pi * np.arange(segments) / segments
    ring = np.stack([x + radius * np.cos(angles), y + radius * np.sin(angles)], axis=1)
    vertices = np.concatenate([
        np.column_stack([ring, np.full(segments, z0)]),
        np.column_stack([ring, np.full(segments, z1)]),
        [[x, y, z0], [x, y, z1]]])
    k = np.arange(segments)
    k1 = (k + 1) % segments
    bottom, top = 2 * segments, 2 * segments + 1
    triangles = np.concatenate([
        np.stack([k, k1, k1 + segments], axis=1),
        np.stack([k, k1 + segments, k + segments], axis=1),
        np.stack([np.full(segments, bottom), k1, k], axis=1),
        np.stack([np.full(segments, top), k + segments, k1 + segments], axis=1)])
    return vertices, triangles.astype(np.int32)


def _sphere(center, radius, rings=16, segments=32):
    """UV sphere; ``rings`` even and ``segments`` a multiple of 4 keep its bounds exact."""
    polar = np.pi * np.arange(1, rings) / rings
    azimuth = 2 * np.pi * np.arange(segments) / segments
    p, a = np.meshgrid(polar, azimuth, indexing='ij')
    ring_points = np.stack([np.sin(p) * np.cos(a), np.sin(p) * np.sin(a), np.cos(p)], axis=-1).reshape(-1, 3)
    unit = np.concatenate([[[0.0, 0.0, 1.0]], ring_points, [[0.0, 0.0, -1.0]]])
    north, south = 0, len(unit) - 1

    def vid(ring, seg):
        return 1 + ring * segments + seg % segments

    triangles = []
    for s in range(segments):
        triangles.append((north, vid(0, s), vid(0, s + 1)))
        triangles.append((south, vid(rings - 2, s + 1), vid(rings - 2, s)))
        for r in range(rings - 2):
            triangles.append((vid(r, s), vid(r + 1, s), vid(r + 1, s + 1)))
            triangles.append((vid(r, s), vid(r + 1, s + 1), vid(r, s + 1)))
    return np.asarray(center, dtype=np.float64) + radius * unit, np.array(triangles, dtype=np.int32)


def _merge(parts):
    vertices, triangles, offset = [], [], 0
    for part_vertices, part_triangles in parts:
        vertices.append(part_vertices)
        triangles.append(part_triangles + offset)
        offset += len(part_vertices)
    return np.concatenate(vertices), np.concatenate(triangles).astype(np.int32)


def _quad(p0, p1, p2, p3):
    return np.array([p0, p1, p2, p3], dtype=np.float64), np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int32)


def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _turned(parts, yaw: float, center_xy) -> list:
    """``parts`` turned by ``yaw`` about the vertical through ``center_xy``."""
    if yaw == 0.0:
        return parts
    pivot = np.array([center_xy[0], center_xy[1], 0.0])
    R = _yaw_matrix(yaw)
    return [((vertices - pivot) @ R.T + pivot, triangles) for vertices, triangles in parts]


def _footprint_rect(parts):
    vertices = np.concatenate([v for v, _ in parts])
    return _rect_of(vertices.min(0), vertices.max(0))


# ---------------------------------------------------------------------------
# Layout

@dataclass
class _Spec:
    label: str
    tags: tuple[str, ...]
    parts: list
    touching: list = field(default_factory=list)
    on_top_of: int | None = None
    yaw: float = 0.0
    look_alike: int | None = None
    """Index of an object whose colour this one imitates (heavy clutter)."""


class _FloorPlan:
    """Axis-aligned footprints on a rectangle; rejects overlapping placements."""

    def __init__(self, x_min, y_min, x_max, y_max, name):
        self.bounds = (x_min, y_min, x_max, y_max)
        self.name = name
        self.rects = []

    def is_free(self, rect, clearance, edge_clearance):
        x0, y0, x1, y1 = rect
        bx0, by0, bx1, by1 = self.bounds
        if x0 < bx0 + edge_clearance or y0 < by0 + edge_clearance:
            return False
        if x1 > bx1 - edge_clearance or y1 > by1 - edge_clearance:
            return False
        return all(x1 + clearance <= r[0] or r[2] + clearance <= x0 or y1 + clearance <= r[1]
                   or r[3] + clearance <= y0 for r in self.rects)

    def place(self, sample, what, clearance, edge_clearance=0.0, required=True):
        """Call ``sample() -> (rect, payload)`` until the rect is free; return the payload.

        After ``_MAX_PLACEMENT_TRIES`` misses: RuntimeError, or None when the item is not ``required``.
        """
        for _ in range(_MAX_PLACEMENT_TRIES):
            rect, payload = sample()
            if self.is_free(rect, clearance, edge_clearance):
                self.rects.append(rect)
                return payload
        if not required:
            logger.debug('no room for the %s on the %s: left out', what, self.name)
            return None
        raise RuntimeError(f'could not place the {what} on the {self.name} after {_MAX_PLACEMENT_TRIES} tries')


def _rect_of(lo, hi):
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


def _table(rng):
    length, depth, height = rng.uniform(1.2, 1.5), rng.uniform(0.7, 0.85), rng.uniform(0.72, 0.76)
    cx, cy = rng.uniform(-0.25, 0.25), rng.uniform(-0.15, 0.15)
    lo = np.array([cx - length / 2, cy - depth / 2, 0.0])
    hi = np.array([cx + length / 2, cy + depth / 2, height])
    top = 0.04
    leg = 0.05
    parts = [_box([lo[0], lo[1], height - top], hi)]
    for x in (lo[0] + 0.04, hi[0] - 0.04 - leg):
        for y in (lo[1] + 0.04, hi[1] - 0.04 - leg):
            parts.append(_box([x, y, 0.0], [x + leg, y + leg, height - top]))
    return lo, hi, parts


def _chair(rng, table_lo, table_hi, side):
    width, depth = rng.uniform(0.42, 0.48), rng.uniform(0.42, 0.48)
    seat, back = rng.uniform(0.43, 0.47), rng.uniform(0.85, 0.95)
    slack = (table_hi[0] - table_lo[0]) / 2 - width / 2 - 0.05
    cx = (table_lo[0] + table_hi[0]) / 2 + rng.uniform(-slack, slack)
    gap = rng.uniform(0.08, 0.2)
    if side > 0:
        y0 = table_hi[1] + gap
    else:
        y0 = table_lo[1] - gap - depth
    lo = np.array([cx - width / 2, y0, 0.0])
    hi = np.array([cx + width / 2, y0 + depth, back])
    leg, slab = 0.035, 0.04
    parts = [_box([lo[0], lo[1], seat - slab], [hi[0], hi[1], seat])]
    for x in (lo[0], hi[0] - leg):
        for y in (lo[1], hi[1] - leg):
            parts.append(_box([x, y, 0.0], [x + leg, y + leg, seat - slab]))
    # Backrest on the side away from the table.
    if side > 0:
        parts.append(_box([lo[0], hi[1] - slab, seat], [hi[0], hi[1], back]))
    else:
        parts.append(_box([lo[0], lo[1], seat], [hi[0], lo[1] + slab, back]))
    return lo, hi, parts


def _against_y_wall(rng, half_x, half_y, width, depth, side):
    x = rng.uniform(-half_x + 0.1 + width / 2, half_x - 0.1 - width / 2)
    if side > 0:
        return np.array([x - width / 2, half_y - _WALL_GAP_M - depth]), np.array([x + width / 2, half_y - _WALL_GAP_M])
    return np.array([x - width / 2, -half_y + _WALL_GAP_M]), np.array([x + width / 2, -half_y + _WALL_GAP_M + depth])


def _storage(rng, half_x, half_y, side):
    """Build a cabinet (closed box with handles) or an open shelf against a y wall."""
    if rng.random() < 0.5:
        width, depth, height = rng.uniform(0.8, 1.1), rng.uniform(0.4, 0.44), rng.uniform(0.8, 1.0)
        lo2, hi2 = _against_y_wall(rng, half_x, half_y, width, depth - 0.02, side)
        body_lo, body_hi = np.array([lo2[0], lo2[1], 0.0]), np.array([hi2[0], hi2[1], height])
        parts = [_box(body_lo, body_hi)]
        front_y = body_lo[1] if side > 0 else body_hi[1]
        out = -0.02 if side > 0 else 0.02
        mid = (body_lo[0] + body_hi[0]) / 2
        for x in (mid - 0.06, mid + 0.04):
            y_lo, y_hi = sorted((front_y, front_y + out))
            parts.append(_box([x, y_lo, height * 0.55], [x + 0.02, y_hi, height * 0.75]))
        return 'cabinet', parts
    width, depth, height = rng.uniform(0.8, 1.0), rng.uniform(0.3, 0.35), rng.uniform(1.6, 1.9)
    lo2, hi2 = _against_y_wall(rng, half_x, half_y, width, depth, side)
    board = 0.02
    parts = [
        _box([lo2[0], lo2[1], 0.0], [lo2[0] + board, hi2[1], height]),
        _box([hi2[0] - board, lo2[1], 0.0], [hi2[0], hi2[1], height]),
    ]
    if side > 0:
        parts.append(_box([lo2[0] + board, hi2[1] - board, 0.0], [hi2[0] - board, hi2[1], height]))
    else:
        parts.append(_box([lo2[0] + board, lo2[1], 0.0], [hi2[0] - board, lo2[1] + board, height]))
    for z in np.linspace(0.05, height - board, 5):
        parts.append(_box([lo2[0] + board, lo2[1], z], [hi2[0] - board, hi2[1], z + board]))
    return 'shelf', parts


def _seating(rng, half_x, half_y, side):
    """Build a sofa or a single bed with its long side against an x wall."""
    sofa = rng.random() < 0.5
    length = rng.uniform(1.6, 2.0) if sofa else rng.uniform(1.9, 2.0)
    depth = rng.uniform(0.8, 0.9) if sofa else rng.uniform(0.9, 1.0)
    y = rng.uniform(-half_y + 0.1 + length / 2, half_y - 0.1 - length / 2)
    if side > 0:
        x0, x1 = half_x - _WALL_GAP_M - depth, half_x - _WALL_GAP_M
    else:
        x0, x1 = -half_x + _WALL_GAP_M, -half_x + _WALL_GAP_M + depth
    y0, y1 = y - length / 2, y + length / 2
    wall_x0, wall_x1 = (x1 - 0.18, x1) if side > 0 else (x0, x0 + 0.18)
    if sofa:
        back, arm = rng.uniform(0.8, 0.9), 0.15
        parts = [
            _box([x0, y0 + arm, 0.0], [x1, y1 - arm, 0.42]),
            _box([wall_x0, y0 + arm, 0.42], [wall_x1, y1 - arm, back]),
            _box([x0, y0, 0.0], [x1, y0 + arm, 0.6]),
            _box([x0, y1 - arm, 0.0], [x1, y1, 0.6]),
        ]
        return 'sofa', parts
    head = 0.06
    inset = 0.03
    parts = [
        _box([x0, y0 + head, 0.0], [x1, y1, 0.3]),
        _box([x0 + inset, y0 + head + inset, 0.3], [x1 - inset, y1 - inset, 0.5]),
        _box([x0, y0, 0.0], [x1, y0 + head, 0.95]),
    ]
    return 'bed', parts


def _mug(rng, x, y, z):
    radius, height = rng.uniform(0.04, 0.045), rng.uniform(0.08, 0.1)
    direction = rng.integers(4)
    axis, sign = direction % 2, (1 if direction < 2 else -1)
    lo = np.array([x, y, z + 0.25 * height])
    hi = np.array([x, y, z + 0.8 * height])
    lo[axis] = hi[axis] = (x, y)[axis] + sign * radius
    if sign > 0:
        lo[axis] -= 0.005
        hi[axis] += 0.025
    else:
        lo[axis] -= 0.025
        hi[axis] += 0.005
    lo[1 - axis] -= 0.006
    hi[1 - axis] += 0.006
    return [_cylinder(x, y, z, z + height, radius), _box(lo, hi)]


def _bottle(rng, x, y, z):
    radius, body = rng.uniform(0.035, 0.04), rng.uniform(0.15, 0.19)
    neck = rng.uniform(0.06, 0.08)
    return [
        _cylinder(x, y, z, z + body, radius),
        _cylinder(x, y, z + body, z + body + neck, 0.014),
        _cylinder(x, y, z + body + neck, z + body + neck + 0.02, 0.016),
    ]


def _tabletop_item(plan, rng, half_footprint, what, required=True):
    """Place an item of footprint half-extents ``half_footprint`` (from its anchor) on the table plan."""
    def sample():
        x0, y0, x1, y1 = plan.bounds
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        hx_lo, hy_lo, hx_hi, hy_hi = half_footprint
        return (x - hx_lo, y - hy_lo, x + hx_hi, y + hy_hi), (x, y)
    return plan.place(sample, what, clearance=0.04, edge_clearance=0.04, required=required)


def _near_wall_offset(rng, half_x, half_y, size):
    """Lower corner that puts a footprint of ``size`` (x, y) a little off a random wall."""
    gap = rng.uniform(*_CLUTTER_WALL_GAP_M)
    wall = int(rng.integers(4))
    if wall < 2:
        x = -half_x + gap if wall == 0 else half_x - gap - size[0]
        return np.array([x, rng.uniform(-half_y, half_y - size[1]), 0.0])
    y = -half_y + gap if wall == 2 else half_y - gap - size[1]
    return np.array([rng.uniform(-half_x, half_x - size[0]), y, 0.0])


def _random_yaw(rng, config) -> float:
    """A yaw in [-furniture_yaw_deg, furniture_yaw_deg]; draws nothing when that is 0 (layouts stay the same)."""
    if config.furniture_yaw_deg <= 0.0:
        return 0.0
    return math.radians(rng.uniform(-config.furniture_yaw_deg, config.furniture_yaw_deg))


def _touching_pair(rng, size_a, size_b):
    """Two boxes (lo, hi) in a local frame with B's face on A's face along a random horizontal axis."""
    axis = int(rng.integers(2))
    other = 1 - axis
    lo_a, hi_a = np.zeros(3), size_a.copy()
    lo_b = np.zeros(3)
    lo_b[other] = rng.uniform(-(size_b[other] - 0.1), size_a[other] - 0.1)
    lo_b[axis] = hi_a[axis]  # B's face is A's face: exact contact
    hi_b = lo_b + size_b
    if rng.random() < 0.5:  # B on the other side of A
        lo_a[axis], hi_a[axis] = size_b[axis], size_b[axis] + size_a[axis]
        lo_b[axis], hi_b[axis] = 0.0, size_b[axis]
        hi_b[axis] = lo_a[axis]
    return (lo_a, hi_a), (lo_b, hi_b)


def _stack_on(rng, lo, hi, size_top):
    """Box (lo, hi) of size ``size_top`` resting exactly on the box (lo, hi), inside its top face."""
    top_lo = np.array([lo[0] + rng.uniform(0, hi[0] - lo[0] - size_top[0]),
                       lo[1] + rng.uniform(0, hi[1] - lo[1] - size_top[1]), hi[2]])
    top_hi = top_lo + size_top
    top_hi[2] = hi[2] + size_top[2]
    return top_lo, top_hi


def _layout(config: SyntheticSceneConfig, rng: np.random.Generator) -> list[_Spec]:
    half_x, half_y = config.room_size_x_m / 2, config.room_size_y_m / 2
    floor = _FloorPlan(-half_x, -half_y, half_x, half_y, 'floor')
    specs: list[_Spec] = []
    clutter = config.clutter

    table_lo, table_hi, parts = _table(rng)
    floor.rects.append(_rect_of(table_lo, table_hi))
    specs.append(_Spec('table', ('furniture',), parts))
    table_index = 0

    # Chairs: one on each long side; then (after the wall furniture, where they fit) one at an end of the
    # table and a second one on a long side.
    table_center = (table_lo + table_hi) / 2

    def add_chair(side, end_turn, required):
        def sample_chair():
            if end_turn:  # a chair at a long side of the table turned by 90 degrees about its centre
                half = (table_hi - table_lo) / 2
                turned_lo = table_center - np.array([half[1], half[0], 0.0])
                turned_hi = table_center + np.array([half[1], half[0], half[2]]) + np.array([0.0, 0.0, half[2]])
                lo, hi, chair_parts = _chair(rng, turned_lo, turned_hi, side)
                chair_parts = _turned(chair_parts, end_turn, table_center[:2])
                lo = hi = np.concatenate([v for v, _ in chair_parts]).mean(0)
            else:
                lo, hi, chair_parts = _chair(rng, table_lo, table_hi, side)
            yaw = _random_yaw(rng, config)
            chair_parts = _turned(chair_parts, yaw, (lo + hi)[:2] / 2)
            return _footprint_rect(chair_parts), (chair_parts, end_turn + yaw)
        placed = floor.place(sample_chair, 'chair', clearance=0.05, required=required)
        if placed is not None:
            specs.append(_Spec('chair', ('furniture',), placed[0], yaw=placed[1]))

    chairs = ((-1, 0.0), (1, 0.0), (1, math.pi / 2), (-1, 0.0))[:config.num_chairs]
    for side, end_turn in chairs[:2]:
        add_chair(side, end_turn, required=True)

    # Wall furniture: a random wall side each, in this order (the seed's layouts depend on it).
    for make_parts, what in ((_storage, 'cabinet or shelf'), (_seating, 'sofa or bed')):
        side = rng.choice([-1, 1])

        def sample_wall_piece(make_parts=make_parts, side=side):
            label, piece_parts = make_parts(rng, half_x, half_y, side)
            return _footprint_rect(piece_parts), (label, piece_parts)
        label, parts = floor.place(sample_wall_piece, what, clearance=0.2)
        specs.append(_Spec(label, ('furniture',), parts))
    storage_index = len(specs) - 2
    for side, end_turn in chairs[2:]:
        add_chair(side, end_turn, required=False)

    # Clutter on the table top.
    top_z = float(table_hi[2])
    tabletop = _FloorPlan(table_lo[0], table_lo[1], table_hi[0], table_hi[1], 'table top')
    for _ in range(2):
        x, y = _tabletop_item(tabletop, rng, (0.075, 0.075, 0.075, 0.075), 'mug')
        specs.append(_Spec('mug', ('small',), _mug(rng, x, y, top_z), on_top_of=table_index))
    x, y = _tabletop_item(tabletop, rng, (0.04, 0.04, 0.04, 0.04), 'bottle')
    specs.append(_Spec('bottle', ('small',), _bottle(rng, x, y, top_z), on_top_of=table_index))
    if clutter != 'none':
        flat_items = [('magazine', (0.27, 0.3), (0.2, 0.22), (0.006, 0.012)),
                      ('book', (0.21, 0.24), (0.14, 0.17), (0.018, 0.025))]
        if clutter == 'heavy':
            flat_items.append(flat_items[0])
        for k, (label, long_side, short_side, thickness) in enumerate(flat_items):
            size = [rng.uniform(*long_side), rng.uniform(*short_side)]
            if rng.random() < 0.5:
                size.reverse()
            placed = _tabletop_item(tabletop, rng, (0.0, 0.0, size[0], size[1]), label, required=k < 2)
            if placed is None:
                continue
            x, y = placed
            box = _box([x, y, top_z], [x + size[0], y + size[1], top_z + rng.uniform(*thickness)])
            specs.append(_Spec(label, ('small', 'flat'), [box], on_top_of=table_index))
    if clutter == 'heavy':
        _heavy_tabletop(rng, tabletop, top_z, table_index, specs)

    # Clutter on the floor, along the walls (where the camera sees it both from across the room
    # and from the inner lap). Each group is built around a local origin, then moved (and turned)
    # as a whole, so that contacts stay exact.
    def place_near_wall(local_lo, local_hi, what, boxes=(), required=True):
        """Offset of a group of boxes (local frame) near a wall, and the yaw it was turned by."""
        size = local_hi[:2] - local_lo[:2]

        def sample():
            offset = _near_wall_offset(rng, half_x, half_y, size) - np.append(local_lo[:2], 0.0)
            yaw = _random_yaw(rng, config) if boxes else 0.0
            parts = _turned([_box(lo + offset, hi + offset) for lo, hi in boxes] or
                            [_box(local_lo + offset, local_hi + offset)], yaw,
                            (local_lo[:2] + local_hi[:2]) / 2 + offset[:2])
            return _footprint_rect(parts), (offset, yaw)
        return floor.place(sample, what, clearance=0.15, edge_clearance=0.05, required=required)

    def add_boxes(group, labels, tags, what, relation, stacked_sizes=(), required=True):
        """A group of boxes near a wall; ``relation`` 'touching' (pairs) or 'stacked' (each on the one before:
        ``group`` is the bottom box, boxes of ``stacked_sizes`` are put on it once it is placed)."""
        lo = np.minimum.reduce([b[0] for b in group])
        hi = np.maximum.reduce([b[1] for b in group])
        placed = place_near_wall(lo, hi, what, group, required)
        if placed is None:
            return None
        offset, yaw = placed
        pivot = (lo[:2] + hi[:2]) / 2 + offset[:2]
        group = list(group)
        for size in stacked_sizes:
            group.append(_stack_on(rng, *group[-1], size))
        first = len(specs)
        for k, ((box_lo, box_hi), label) in enumerate(zip(group, labels)):
            spec = _Spec(label, tags, _turned([_box(box_lo + offset, box_hi + offset)], yaw, pivot), yaw=yaw)
            if relation == 'touching':
                spec.touching = [first + (1 - k)]
            elif k > 0:
                spec.on_top_of = first + k - 1
            specs.append(spec)
        return first

    radius = rng.uniform(0.1, 0.13)
    offset, _ = place_near_wall(np.zeros(3), np.full(3, 2 * radius), 'ball')
    specs.append(_Spec('ball', ('small',), [_sphere(offset + radius, radius)]))

    size_a = np.array([rng.uniform(0.3, 0.4), rng.uniform(0.25, 0.35), rng.uniform(0.25, 0.4)])
    size_b = np.array([rng.uniform(0.25, 0.35), rng.uniform(0.25, 0.35), rng.uniform(0.2, 0.35)])
    if clutter == 'none':
        for size, label in ((size_a, 'storage box'), (size_b, 'cardboard box')):
            add_boxes([(np.zeros(3), size)], [label], (), label, None)
    else:
        add_boxes(_touching_pair(rng, size_a, size_b), ['storage box', 'cardboard box'], ('touching',),
                  'touching boxes', 'touching')

    size_bottom = np.array([rng.uniform(0.4, 0.5), rng.uniform(0.35, 0.45), rng.uniform(0.25, 0.35)])
    size_top = np.array([rng.uniform(0.25, 0.35), rng.uniform(0.2, 0.3), rng.uniform(0.15, 0.25)])
    if clutter == 'none':
        add_boxes([(np.zeros(3), size_bottom)], ['crate'], (), 'crate', None)
    else:
        add_boxes([(np.zeros(3), size_bottom)], ['crate', 'toolbox'], ('stacked',), 'stacked boxes', 'stacked',
                  [size_top])
    if clutter == 'heavy':
        _heavy_floor_and_furniture(rng, specs, storage_index, add_boxes)
    return specs


def _heavy_tabletop(rng, tabletop, top_z, table_index, specs):
    """Heavy clutter on the table: a can touching a bowl, a stack of two books."""
    radius_bowl, radius_can = rng.uniform(0.07, 0.09), rng.uniform(0.032, 0.036)
    span = 2 * radius_bowl + 2 * radius_can
    placed = _tabletop_item(tabletop, rng, (radius_bowl, radius_bowl, span - radius_bowl, radius_bowl),
                            'bowl and can', required=False)
    if placed is not None:
        _touching_bowl_and_can(rng, placed, radius_bowl, radius_can, top_z, table_index, specs)
    size = np.array([rng.uniform(0.21, 0.24), rng.uniform(0.15, 0.17), rng.uniform(0.025, 0.035)])
    placed = _tabletop_item(tabletop, rng, (0.0, 0.0, size[0], size[1]), 'book stack', required=False)
    if placed is None:
        return
    lo = np.array([placed[0], placed[1], top_z])
    hi = lo + size
    top_size = np.array([rng.uniform(0.15, 0.19), rng.uniform(0.11, 0.14), rng.uniform(0.02, 0.03)])
    top_lo, top_hi = _stack_on(rng, lo, hi, top_size)
    bottom = len(specs)
    specs.append(_Spec('book', ('small', 'stacked'), [_box(lo, hi)], on_top_of=table_index))
    specs.append(_Spec('book', ('small', 'stacked'), [_box(top_lo, top_hi)], on_top_of=bottom))


def _touching_bowl_and_can(rng, anchor, radius_bowl, radius_can, top_z, table_index, specs):
    x, y = anchor
    first = len(specs)
    specs.append(_Spec('bowl', ('small', 'touching'), [_cylinder(x, y, top_z, top_z + rng.uniform(0.06, 0.08),
                                                                 radius_bowl)], touching=[first + 1],
                       on_top_of=table_index))
    can_x = x + radius_bowl + radius_can  # the cylinders touch along x
    specs.append(_Spec('can', ('small', 'touching'), [_cylinder(can_x, y, top_z, top_z + rng.uniform(0.11, 0.13),
                                                                radius_can)], touching=[first],
                       on_top_of=table_index, look_alike=first if rng.random() < 0.5 else None))


def _heavy_floor_and_furniture(rng, specs, storage_index, add_boxes):
    """Heavy clutter: objects on the cabinet, a second touching pair, a stack of three."""
    storage = specs[storage_index]
    if storage.label == 'cabinet':
        body = storage.parts[0][0]
        lo, hi = body.min(0), body.max(0)
        top = _FloorPlan(lo[0], lo[1], hi[0], hi[1], 'cabinet top')
        size = np.array([rng.uniform(0.15, 0.25), rng.uniform(0.12, 0.2), rng.uniform(0.1, 0.2)])
        placed = _tabletop_item(top, rng, (0.0, 0.0, size[0], size[1]), 'box on the cabinet', required=False)
        if placed is not None:
            x, y = placed
            specs.append(_Spec('box', ('small',), [_box([x, y, hi[2]], [x + size[0], y + size[1], hi[2] + size[2]])],
                               on_top_of=storage_index))
        radius = rng.uniform(0.05, 0.07)
        placed = _tabletop_item(top, rng, (radius, radius, radius, radius), 'vase', required=False)
        if placed is not None:
            specs.append(_Spec('vase', ('small',), [_cylinder(*placed, hi[2], hi[2] + rng.uniform(0.2, 0.3), radius)],
                               on_top_of=storage_index))
    size_a = np.array([rng.uniform(0.35, 0.5), rng.uniform(0.25, 0.35), rng.uniform(0.3, 0.5)])
    size_b = np.array([rng.uniform(0.2, 0.3), rng.uniform(0.2, 0.3), rng.uniform(0.15, 0.3)])
    first = add_boxes(_touching_pair(rng, size_a, size_b), ['suitcase', 'box'], ('touching',), 'second touching pair',
                      'touching', required=False)
    if first is not None and rng.random() < 0.5:
        specs[first + 1].look_alike = first
    sizes = [np.array([rng.uniform(0.45, 0.55), rng.uniform(0.4, 0.5), rng.uniform(0.2, 0.3)]),
             np.array([rng.uniform(0.3, 0.4), rng.uniform(0.28, 0.35), rng.uniform(0.15, 0.25)]),
             np.array([rng.uniform(0.15, 0.22), rng.uniform(0.12, 0.2), rng.uniform(0.1, 0.15)])]
    first = add_boxes([(np.zeros(3), sizes[0])], ['crate', 'box', 'box'], ('stacked',), 'stack of three',
                      'stacked', sizes[1:], required=False)
    if first is not None and rng.random() < 0.5:
        specs[first + 1].look_alike = first


def _object_colors(count, rng):
    """Evenly spaced hues in a seeded order, so every object has a distinct colour."""
    hues = (rng.uniform(0, 1) + np.arange(count) / count) % 1.0
    hues = hues[rng.permutation(count)]
    colors = []
    for k, hue in enumerate(hues):
        saturation = rng.uniform(0.55, 0.85)
        value = 0.9 if k % 2 == 0 else 0.65
        colors.append(tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(hue, saturation, value)))
    return colors


def _room_structure(config):
    half_x, half_y, height = config.room_size_x_m / 2, config.room_size_y_m / 2, config.room_height_m
    x0, x1, y0, y1 = -half_x, half_x, -half_y, half_y
    # Normals face into the room.
    return [
        ('floor', (150, 118, 88), _quad([x0, y0, 0], [x1, y0, 0], [x1, y1, 0], [x0, y1, 0])),
        ('ceiling', (236, 236, 230), _quad([x0, y0, height], [x0, y1, height], [x1, y1, height], [x1, y0, height])),
        ('wall_x_min', (214, 208, 196), _quad([x0, y0, 0], [x0, y1, 0], [x0, y1, height], [x0, y0, height])),
        ('wall_x_max', (205, 212, 214), _quad([x1, y0, 0], [x1, y0, height], [x1, y1, height], [x1, y1, 0])),
        ('wall_y_min', (216, 212, 200), _quad([x0, y0, 0], [x0, y0, height], [x1, y0, height], [x1, y0, 0])),
        ('wall_y_max', (208, 204, 214), _quad([x0, y1, 0], [x1, y1, 0], [x1, y1, height], [x0, y1, height])),
    ]


def _posters(config, rng):
    half_x, half_y, height = config.room_size_x_m / 2, config.room_size_y_m / 2, config.room_height_m
    posters = []
    for surface, along_axis, half_length in (('wall_x_min', 1, half_y), ('wall_x_max', 1, half_y),
                                             ('wall_y_min', 0, half_x), ('wall_y_max', 0, half_x)):
        width, tall = rng.uniform(0.5, 0.9), rng.uniform(0.4, 0.7)
        center = rng.uniform(-half_length + 0.3 + width / 2, half_length - 0.3 - width / 2)
        z_max = min(rng.uniform(1.4, 1.9), height - 0.15)
        color_a = tuple(colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.95)))
        color_b = tuple(colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.95)))
        posters.append(_Poster(surface, along_axis, center - width / 2, center + width / 2, z_max - tall, z_max,
                               color_a, color_b, rng.uniform(0.06, 0.15)))
    return posters


def build_scene(config: SyntheticSceneConfig) -> SyntheticScene:
    """Lay out the room and its objects for ``config.seed`` and prepare them for ray casting."""
    if not isinstance(config, SyntheticSceneConfig):
        raise TypeError(f'config must be a SyntheticSceneConfig, got {type(config).__name__}')
    specs = _layout(config, _rng(config.seed, _STREAM_LAYOUT))
    texture_rng = _rng(config.seed, _STREAM_TEXTURE)
    colors = _object_colors(len(specs), texture_rng)
    for index, spec in enumerate(specs):
        if spec.look_alike is not None:
            colors[index] = _look_alike(colors[spec.look_alike], colors)
    # The room is built and ray cast in its own frame (walls along x and y); objects are reported in the
    # world frame, which room_yaw_deg turns about z.
    T_world_room = room_pose(config)
    room_yaw = math.radians(config.room_yaw_deg)
    objects = []
    for index, spec in enumerate(specs):
        vertices, triangles = _merge(spec.parts)
        objects.append(SceneObject(
            id=index + 1, label=spec.label, tags=spec.tags, base_color=colors[index],
            vertices=vertices @ T_world_room[:3, :3].T, triangles=triangles,
            touching_ids=tuple(i + 1 for i in spec.touching),
            on_top_of=None if spec.on_top_of is None else spec.on_top_of + 1,
            yaw=math.remainder(spec.yaw + room_yaw, 2 * math.pi)))
    structure = [StructureSurface(name, color, vertices, triangles)
                 for name, color, (vertices, triangles) in _room_structure(config)]
    posters = _posters(config, texture_rng)

    raycaster = o3d.t.geometry.RaycastingScene()
    # One row per ray-cast geometry: (geometry id, instance id, RGB, checker cell along x/y and
    # along z in metres, checker contrast, smooth-noise amplitude). 1e3 m cells mean "no checker".
    rows = []
    surface_look = {'floor': (0.45, 1e3, 0.18, 0.06), 'ceiling': (1e3, 1e3, 0.0, 0.03)}
    wall_look = (0.25, 1e3, 0.05, 0.05)  # vertical stripes
    for surface in structure:
        rows.append((_add_mesh(raycaster, surface.vertices, surface.triangles), STRUCTURE_INSTANCE_ID,
                     surface.base_color) + surface_look.get(surface.name, wall_look))
    for obj in objects:
        cell = texture_rng.uniform(0.03, 0.08)
        rows.append((_add_mesh(raycaster, obj.vertices @ T_world_room[:3, :3], obj.triangles), obj.id, obj.base_color,
                     cell, cell, texture_rng.uniform(0.06, 0.12), 0.08))
    count = max(row[0] for row in rows) + 2  # last entry: nothing hit
    instance = np.zeros(count, dtype=np.uint16)
    color = np.zeros((count, 3), dtype=np.float32)
    inv_cell = np.ones(count, dtype=np.float32)
    inv_cell_z = np.ones(count, dtype=np.float32)
    contrast = np.zeros(count, dtype=np.float32)
    amplitude = np.zeros(count, dtype=np.float32)
    for geometry, instance_id, rgb, cell, cell_z, checker, noise in rows:
        instance[geometry] = instance_id
        color[geometry] = np.asarray(rgb, dtype=np.float32) / 255.0
        inv_cell[geometry] = 1.0 / cell
        inv_cell_z[geometry] = 1.0 / cell_z
        contrast[geometry] = checker
        amplitude[geometry] = noise
    geometry_of_surface = {surface.name: row[0] for surface, row in zip(structure, rows)}
    tables = _RenderTables(
        raycaster=raycaster, instance=instance, color=color, checker_inv_cell=inv_cell,
        checker_inv_cell_z=inv_cell_z, checker_contrast=contrast, noise_amplitude=amplitude,
        poster_geometry=tuple(geometry_of_surface[p.surface] for p in posters), posters=tuple(posters),
        lamp=np.array([0.0, 0.0, config.room_height_m - 0.3], dtype=np.float32))
    half = np.array([config.room_size_x_m / 2, config.room_size_y_m / 2])
    scene = SyntheticScene(
        config=config, room_min=np.array([-half[0], -half[1], 0.0]),
        room_max=np.array([half[0], half[1], config.room_height_m]), objects=tuple(objects),
        structure=tuple(structure), render_tables=tables)
    logger.debug('built synthetic scene seed=%d with %d objects: %s', config.seed, len(objects),
                 ', '.join(f'{o.id}:{o.label}' for o in objects))
    return scene


def room_pose(config: SyntheticSceneConfig) -> np.ndarray:
    """``T_world_room``: the room turned by ``room_yaw_deg`` about the world z axis through the origin."""
    T = np.eye(4)
    T[:3, :3] = _yaw_matrix(math.radians(config.room_yaw_deg))
    return T


def _look_alike(color, taken):
    """A shade of ``color`` (same hue and saturation, another brightness) that no other object has."""
    hue, saturation, value = colorsys.rgb_to_hsv(*(c / 255.0 for c in color))
    for factor in (0.82, 1.18, 0.7, 1.3, 0.6):
        candidate = tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(hue, saturation, min(1.0, value * factor)))
        if candidate not in taken:
            return candidate
    return color


def _add_mesh(raycaster, vertices, triangles):
    return int(raycaster.add_triangles(
        o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
        o3d.core.Tensor(np.ascontiguousarray(triangles, dtype=np.uint32))))


def _rng(seed, stream):
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))


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
        position = np.array([
            semi_x * scale * math.cos(angle), semi_y * scale * math.sin(angle),
            config.camera_height_m + config.camera_bob_m * math.sin(5 * s + phases[1])])
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
def _pixel_rays(width, height, fx, fy, cx, cy):
    """Camera-frame ray directions (x, y; z = 1, so ray length = depth) and their norms, per pixel."""
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    x = ((u - cx) / fx).ravel()
    y = ((v - cy) / fy).ravel()
    norms = np.sqrt(x * x + y * y + 1.0)
    arrays = tuple(a.astype(np.float32) for a in (x, y, norms))
    for a in arrays:
        a.flags.writeable = False
    return arrays


def render_frame(scene: SyntheticScene, T_world_camera, config: SyntheticSceneConfig,
                 rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray-cast one view of ``scene``; camera and sensor model come from ``config``.

    Returns ``(color, depth_m, instance)``: RGB ``HxWx3 uint8``, depth ``HxW
    float32`` metres (0 = no measurement), instance ids ``HxW uint16`` (0 = room
    structure or nothing hit). ``rng`` drives the depth noise and is required
    when ``config.depth_noise`` is on; it is not used otherwise.
    """
    T = check_rigid_transform(T_world_camera, 'T_world_camera')
    T = np.linalg.inv(room_pose(scene.config)) @ T  # the scene is ray cast in the room's own frame
    if config.depth_noise and not isinstance(rng, np.random.Generator):
        raise ValueError('render_frame needs rng=np.random.Generator when config.depth_noise is on, '
                         f'got {type(rng).__name__}; pass one or turn depth_noise off')
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


def _shade(tables, index, points, normals):
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
        waves += np.float32(weight) * np.sin(px * np.float32(kx) + py * np.float32(ky) + pz * np.float32(kz)
                                             + np.float32(phase))
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
        keep = ((along >= poster.along_min) & (along <= poster.along_max)
                & (height >= poster.z_min) & (height <= poster.z_max))
        if not keep.any():
            continue
        inside = candidates[keep]
        pattern = (np.floor((along[keep] - poster.along_min) / poster.cell_m)
                   + np.floor((height[keep] - poster.z_min) / poster.cell_m)).astype(np.int32) & 1
        albedo[inside] = np.where(pattern[:, None] == 1, np.float32(poster.color_a), np.float32(poster.color_b))
        # Posters are matte paper: no wall texture on them.
        shade[inside] /= texture[inside]
    albedo *= shade[:, None]
    return albedo


# ---------------------------------------------------------------------------
# Writing a sequence

def _prepare_output_dir(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ValueError(f'out_dir {str(out_dir)!r} exists and is not a folder')
        entries = list(out_dir.iterdir())
        if entries:
            marker = out_dir / GROUND_TRUTH_FILE
            try:
                generator = json.loads(marker.read_text()).get('generator')
            except (OSError, ValueError, AttributeError):
                generator = None
            if generator != GENERATOR_NAME:
                raise ValueError(
                    f'out_dir {str(out_dir)!r} is a non-empty folder not written by {GENERATOR_NAME} '
                    f'(no {GROUND_TRUTH_FILE} with generator={GENERATOR_NAME!r}); choose an empty or new folder')
            for entry in entries:
                if entry.is_file() and _GENERATED_FILE.fullmatch(entry.name):
                    entry.unlink()
    else:
        out_dir.mkdir(parents=True)


def _json_scalar(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f'{type(value).__name__} is not JSON serialisable')


def _write_frame(out_dir: Path, index: int, color, depth_m, instance, T_world_camera, jpeg_quality: int):
    stem = out_dir / f'frame-{index:06d}'
    depth_mm = np.round(depth_m * DEPTH_SCALE_PER_M).astype(np.uint16)
    ok = cv2.imwrite(f'{stem}.color.jpg', cv2.cvtColor(color, cv2.COLOR_RGB2BGR),
                     [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    ok &= cv2.imwrite(f'{stem}.depth.png', depth_mm, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    ok &= cv2.imwrite(f'{stem}.instance.png', instance, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OSError(f'could not write the images of frame {index} to {str(out_dir)!r}')
    np.savetxt(f'{stem}.pose.txt', T_world_camera)


def write_sequence(config: SyntheticSceneConfig, out_dir) -> SyntheticScene:
    """Render the sequence for ``config`` into ``out_dir`` (7-Scenes layout plus ground truth).

    Creates ``out_dir`` if needed. An existing non-empty folder is only reused
    when it was written by this generator (its ``instances.json`` says so); its
    generated files are then replaced, other files are left alone. Raises
    ValueError otherwise. ``instances.json`` is written before the frames.
    """
    if not isinstance(config, SyntheticSceneConfig):
        raise TypeError(f'config must be a SyntheticSceneConfig, got {type(config).__name__}')
    out_dir = Path(out_dir)
    _prepare_output_dir(out_dir)
    start = time.perf_counter()
    scene = build_scene(config)
    np.savetxt(out_dir / INTRINSICS_FILE, config.intrinsics.matrix())
    (out_dir / GROUND_TRUTH_FILE).write_text(json.dumps(scene.ground_truth(), indent=2, default=_json_scalar) + '\n')
    rng = _rng(config.seed, _STREAM_SENSOR)
    pending = collections.deque()
    # Encoding and file writes (OpenCV releases the GIL) overlap with the next ray cast.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for index, T_world_camera in enumerate(camera_path(config)):
            color, depth_m, instance = render_frame(scene, T_world_camera, config, rng)
            pending.append(pool.submit(_write_frame, out_dir, index, color, depth_m, instance, T_world_camera,
                                       config.jpeg_quality))
            while len(pending) > 4:
                pending.popleft().result()
        while pending:
            pending.popleft().result()
    logger.info('wrote %d synthetic frames (%dx%d, %d objects) to %s in %.1f s', config.num_frames,
                config.width, config.height, len(scene.objects), out_dir, time.perf_counter() - start)
    return scene


# ---------------------------------------------------------------------------
# Command line

def main(argv=None) -> int:
    """Command-line entry ``gpt4scene-make-scene``; returns the exit code (2 for bad arguments)."""
    defaults = SyntheticSceneConfig()
    parser = argparse.ArgumentParser(
        prog='gpt4scene-make-scene',
        description='Write a procedural synthetic RGB-D sequence with ground truth in the 7-Scenes layout.')
    parser.add_argument('out_dir', help='output folder (new, empty, or written by this tool before)')
    parser.add_argument('--seed', type=int, default=defaults.seed, help='layout, camera and noise seed')
    parser.add_argument('--frames', type=int, default=defaults.num_frames, help='number of frames')
    parser.add_argument('--no-noise', action='store_true', help='exact depth (no noise, no dropout)')
    parser.add_argument('--width', type=int, default=defaults.width, help='image width (field of view kept)')
    parser.add_argument('--height', type=int, default=defaults.height, help='image height (field of view kept)')
    parser.add_argument('--clutter', choices=CLUTTER_LEVELS, default=defaults.clutter,
                        help='none: objects stand apart; standard: flat, touching, stacked; heavy: more of each')
    parser.add_argument('--chairs', type=int, default=defaults.num_chairs, help='chairs around the table (1-4)')
    parser.add_argument('--room-yaw', type=float, default=defaults.room_yaw_deg,
                        help='turn of the room about z, degrees')
    parser.add_argument('--furniture-yaw', type=float, default=defaults.furniture_yaw_deg,
                        help='largest random yaw of chairs and floor objects, degrees')
    parser.add_argument('--bag', default='', metavar='FOLDER',
                        help='also record the sequence as a rosbag2 bag here (topics as a RealSense driver names them)')
    parser.add_argument('--bag-storage', choices=('mcap', 'sqlite3'), default='mcap')
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the error
        return exc.code if isinstance(exc.code, int) else 2
    start = time.perf_counter()
    try:
        config = SyntheticSceneConfig(seed=args.seed, num_frames=args.frames, depth_noise=not args.no_noise,
                                      clutter=args.clutter, num_chairs=args.chairs, room_yaw_deg=args.room_yaw,
                                      furniture_yaw_deg=args.furniture_yaw)
        if args.width <= 0 or args.height <= 0:
            raise ValueError(f'--width and --height must be positive, got {args.width}x{args.height}')
        if (args.width, args.height) != (config.width, config.height):
            config = config.with_resolution(args.width, args.height)
        if args.bag and Path(args.bag).exists():
            raise ValueError(f'--bag {args.bag}: already exists (rosbag2 writes a new folder)')
        scene = write_sequence(config, args.out_dir)
    except ValueError as exc:
        print(f'gpt4scene-make-scene: error: {exc}', file=sys.stderr)
        return 2
    print(f'wrote {config.num_frames} frames ({config.width}x{config.height}), {len(scene.objects)} objects '
          f'to {args.out_dir} in {time.perf_counter() - start:.1f} s')
    if args.bag:
        from gpt4scene_ros.io.bags import write_bag
        from gpt4scene_ros.io.folders import open_sequence
        frames = write_bag(open_sequence(args.out_dir), args.bag, storage=args.bag_storage)
        print(f'recorded {frames} frames as a rosbag2 bag ({args.bag_storage}) in {args.bag}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
