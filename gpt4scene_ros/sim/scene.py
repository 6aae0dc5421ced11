"""The synthetic indoor scene's description: its config, constants, objects and ground truth.

The scene is generated from a seed, needs no downloads, and comes with exact
ground truth, so the mapping, BEV and instance stages can be tested end to end.
``gpt4scene_ros.sim.build`` lays it out (:func:`build_scene`),
``gpt4scene_ros.sim.render`` ray-casts its views and ``gpt4scene_ros.sim.writer``
writes a sequence of them; ``gpt4scene-make-scene``
(``gpt4scene_ros.tools.make_scene``) is the command line.

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

The names with a leading underscore are internal to ``gpt4scene_ros.sim``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import NoReturn

import numpy as np
import open3d as o3d

from gpt4scene_ros.common.frames import CameraIntrinsics
from gpt4scene_ros.common.settings.spec import check_settings, setting
from gpt4scene_ros.sim.shapes import _yaw_matrix

# Written into every generated instances.json and checked before reusing a folder: a file-format
# identifier (the generator's original module path), not an import path; it stays as it is.
GENERATOR_NAME = 'gpt4scene_ros.core.synthetic'
"""Value of ``generator`` in ``instances.json``; marks a folder ``write_sequence`` may overwrite."""

GROUND_TRUTH_FILE = 'instances.json'
INTRINSICS_FILE = 'camera-intrinsics.txt'
DEPTH_SCALE_PER_M = 1000.0
"""Depth PNG units per metre (millimetres, as in 7-Scenes)."""

STRUCTURE_INSTANCE_ID = 0
TAGS = ('small', 'flat', 'touching', 'stacked', 'furniture')

# Independent random streams derived from the seed, so that e.g. changing the
# number of frames does not change the layout.
_STREAM_LAYOUT = 1
_STREAM_CAMERA = 2
_STREAM_SENSOR = 3
_STREAM_TEXTURE = 4

# Room and layout dimensions (the config's checks rely on them).
_WALL_GAP_M = 0.01
"""Gap between wall-standing furniture and the wall (avoids coincident faces)."""
_TALLEST_LOW_OBJECT_M = 1.1
"""All objects away from the walls stay below this height; the camera stays above it."""
_DEEPEST_WALL_OBJECT_M = 0.46
"""Wall-standing objects reach at most this far into the room (plus ``_WALL_GAP_M``)."""
_MIN_ROOM_X_M = 4.5
_MIN_ROOM_Y_M = 4.0
_MAX_ROOM_M = 10.0
_MAX_STORABLE_DEPTH_M = np.iinfo(np.uint16).max / DEPTH_SCALE_PER_M
"""Farthest depth a uint16 millimetre PNG can hold, metres."""
CLUTTER_LEVELS = ('none', 'standard', 'heavy')


@dataclass(frozen=True)
class SyntheticSceneConfig:
    """Everything that determines a synthetic sequence; validated on construction."""

    seed: int = setting(0, 'Seed of the layout, textures, camera path and sensor noise.', minimum=0, maximum=2**63 - 1)
    num_frames: int = setting(300, 'Number of frames along one loop of the camera path.', minimum=1, maximum=1_000_000)
    width: int = setting(640, 'Image width in pixels.', minimum=16, maximum=8192)
    height: int = setting(480, 'Image height in pixels.', minimum=16, maximum=8192)
    fx: float = setting(525.0, 'Focal length along x in pixels.', greater_than=0.0)
    fy: float = setting(525.0, 'Focal length along y in pixels.', greater_than=0.0)
    cx: float = setting(
        319.5, 'Principal point x in pixels (pixel centres at integer coordinates); at most width.', minimum=0.0
    )
    cy: float = setting(
        239.5, 'Principal point y in pixels (pixel centres at integer coordinates); at most height.', minimum=0.0
    )
    depth_noise: bool = setting(True, 'Simulate depth noise and dropout; off gives exact depth in range.')
    noise_sigma_base_m: float = setting(
        0.0012, 'Depth noise sigma at the offset depth, metres.', minimum=0.0, maximum=0.1
    )
    noise_sigma_quadratic_per_m: float = setting(
        0.0019, 'Quadratic growth of depth noise sigma: sigma += k (z - offset)^2, in 1/m.', minimum=0.0, maximum=0.1
    )
    noise_sigma_offset_m: float = setting(
        0.4, 'Depth at which the noise sigma is smallest, metres.', minimum=0.0, maximum=10.0
    )
    dropout_fraction: float = setting(
        0.01, 'Fraction of pixels randomly dropped (depth 0).', minimum=0.0, less_than=1.0
    )
    grazing_dropout_cos: float = setting(
        0.15, 'Drop depth where |cos| between ray and surface normal is below this.', minimum=0.0, less_than=1.0
    )
    min_depth_m: float = setting(0.3, 'Closest measurable depth, metres.', greater_than=0.0)
    max_depth_m: float = setting(
        4.5,
        'Farthest measurable depth, metres; above min_depth_m and at most the '
        'largest depth a uint16 millimetre PNG holds.',
        maximum=_MAX_STORABLE_DEPTH_M,
    )
    room_size_x_m: float = setting(
        5.0,
        'Room length along world x, metres (the lower bound leaves room for the furniture).',
        minimum=_MIN_ROOM_X_M,
        maximum=_MAX_ROOM_M,
    )
    room_size_y_m: float = setting(
        4.0,
        'Room length along world y, metres (the lower bound leaves room for the furniture).',
        minimum=_MIN_ROOM_Y_M,
        maximum=_MAX_ROOM_M,
    )
    room_height_m: float = setting(2.6, 'Floor-to-ceiling height, metres.', minimum=2.2, maximum=5.0)
    camera_height_m: float = setting(
        1.4,
        'Mean camera height above the floor, metres; above the furniture '
        'and below the ceiling, including camera_bob_m.',
    )
    camera_bob_m: float = setting(0.1, 'Amplitude of the vertical camera bob, metres.', minimum=0.0, maximum=0.3)
    camera_wall_margin_m: float = setting(
        0.75,
        'Distance of the camera loop from the walls, metres; clear of '
        'the wall furniture, and small enough for the loop not to degenerate.',
    )
    camera_look_aside_deg: float = setting(
        70.0,
        'Largest camera yaw away from the room centre, degrees (objects at the walls are seen obliquely).',
        minimum=0.0,
        maximum=180.0,
    )
    jpeg_quality: int = setting(95, 'JPEG quality of the colour images.', minimum=1, maximum=100)
    clutter: str = setting(
        'standard',
        'none: objects stand apart; standard: plus flat, touching and stacked '
        'objects; heavy: more of each, objects on the cabinet, look-alike colours.',
        choices=CLUTTER_LEVELS,
    )
    num_chairs: int = setting(2, 'Chairs around the table.', minimum=1, maximum=4)
    room_yaw_deg: float = setting(
        0.0,
        'Turn of the whole room (and camera path) about z, degrees: walls not along world x/y.',
        minimum=-180.0,
        maximum=180.0,
    )
    furniture_yaw_deg: float = setting(
        0.0, 'Largest random yaw of chairs and free-standing floor objects, degrees.', minimum=0.0, maximum=45.0
    )

    def __post_init__(self) -> None:
        check_settings(self)

        def fail(name: str, rule: str) -> NoReturn:
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
            fail(
                'camera_height_m',
                f'in [{low:.2f}, {high:.2f}] (above the furniture, below the ceiling, '
                f'including camera_bob_m={self.camera_bob_m})',
            )
        low = _DEEPEST_WALL_OBJECT_M + _WALL_GAP_M + 0.1
        high = min(self.room_size_x_m, self.room_size_y_m) / 2 - 0.5
        if not low <= self.camera_wall_margin_m <= high:
            fail(
                'camera_wall_margin_m',
                f'in [{low:.2f}, {high:.2f}] (clear of wall furniture, loop not degenerate; '
                f'room_size_x_m={self.room_size_x_m}, room_size_y_m={self.room_size_y_m})',
            )

    @property
    def intrinsics(self) -> CameraIntrinsics:
        """Pinhole intrinsics of the rendered images."""
        return CameraIntrinsics(self.width, self.height, self.fx, self.fy, self.cx, self.cy)

    def with_resolution(self, width: int, height: int) -> SyntheticSceneConfig:
        """Return a copy rendering ``width`` x ``height`` images with the same field of view."""
        sx = width / self.width
        sy = height / self.height
        return dataclasses.replace(
            self,
            width=width,
            height=height,
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
        )


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
                'width': config.width,
                'height': config.height,
                'fx': config.fx,
                'fy': config.fy,
                'cx': config.cx,
                'cy': config.cy,
                'K': config.intrinsics.matrix().tolist(),
            },
            'depth': {
                'scale_per_m': DEPTH_SCALE_PER_M,
                'min_depth_m': config.min_depth_m,
                'max_depth_m': config.max_depth_m,
            },
            'noise': {
                'enabled': config.depth_noise,
                'model': 'sigma(z) = sigma_base_m + sigma_quadratic_per_m * (z - sigma_offset_m)^2',
                'sigma_base_m': config.noise_sigma_base_m,
                'sigma_quadratic_per_m': config.noise_sigma_quadratic_per_m,
                'sigma_offset_m': config.noise_sigma_offset_m,
                'dropout_fraction': config.dropout_fraction,
                'grazing_dropout_cos': config.grazing_dropout_cos,
            },
            'room': {
                'min': self.room_min.tolist(),
                'max': self.room_max.tolist(),
                'T_world_room': room_pose(config).tolist(),
                'structure_instance_id': STRUCTURE_INSTANCE_ID,
                'surfaces': [surface.name for surface in self.structure],
            },
            'config': dataclasses.asdict(config),
            'objects': [obj.to_json() for obj in self.objects],
        }


def room_pose(config: SyntheticSceneConfig) -> np.ndarray:
    """``T_world_room``: the room turned by ``room_yaw_deg`` about the world z axis through the origin."""
    T = np.eye(4)
    T[:3, :3] = _yaw_matrix(math.radians(config.room_yaw_deg))
    return T


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))
