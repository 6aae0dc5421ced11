"""Building a synthetic scene from its config: objects, colours, room surfaces and ray-casting tables.

:func:`build_scene` takes the layout of ``gpt4scene_ros.sim.layout`` for the
seed, colours its objects, adds the room's floor, walls, ceiling and wall
posters, and loads everything into an Open3D ray caster with the per-geometry
lookup tables that ``gpt4scene_ros.sim.render`` shades with.
"""

from __future__ import annotations

import colorsys
import logging
import math

import numpy as np
import open3d as o3d

from gpt4scene_ros.sim.layout import _layout
from gpt4scene_ros.sim.scene import (
    _STREAM_LAYOUT,
    _STREAM_TEXTURE,
    STRUCTURE_INSTANCE_ID,
    SceneObject,
    StructureSurface,
    SyntheticScene,
    SyntheticSceneConfig,
    _Poster,
    _RenderTables,
    _rng,
    room_pose,
)
from gpt4scene_ros.sim.shapes import _merge, _Part, _quad

logger = logging.getLogger(__name__)


def _object_colors(count: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """Evenly spaced hues in a seeded order, so every object has a distinct colour."""
    hues = (rng.uniform(0, 1) + np.arange(count) / count) % 1.0
    hues = hues[rng.permutation(count)]
    colors = []
    for k, hue in enumerate(hues):
        saturation = rng.uniform(0.55, 0.85)
        value = 0.9 if k % 2 == 0 else 0.65
        red, green, blue = colorsys.hsv_to_rgb(hue, saturation, value)
        colors.append((int(round(255 * red)), int(round(255 * green)), int(round(255 * blue))))
    return colors


def _room_structure(config: SyntheticSceneConfig) -> list[tuple[str, tuple[int, int, int], _Part]]:
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


def _posters(config: SyntheticSceneConfig, rng: np.random.Generator) -> list[_Poster]:
    half_x, half_y, height = config.room_size_x_m / 2, config.room_size_y_m / 2, config.room_height_m
    posters = []
    for surface, along_axis, half_length in (
        ('wall_x_min', 1, half_y),
        ('wall_x_max', 1, half_y),
        ('wall_y_min', 0, half_x),
        ('wall_y_max', 0, half_x),
    ):
        width, tall = rng.uniform(0.5, 0.9), rng.uniform(0.4, 0.7)
        center = rng.uniform(-half_length + 0.3 + width / 2, half_length - 0.3 - width / 2)
        z_max = min(rng.uniform(1.4, 1.9), height - 0.15)
        color_a = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.95))
        color_b = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.95))
        posters.append(
            _Poster(
                surface,
                along_axis,
                center - width / 2,
                center + width / 2,
                z_max - tall,
                z_max,
                color_a,
                color_b,
                rng.uniform(0.06, 0.15),
            )
        )
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
        objects.append(
            SceneObject(
                id=index + 1,
                label=spec.label,
                tags=spec.tags,
                base_color=colors[index],
                vertices=vertices @ T_world_room[:3, :3].T,
                triangles=triangles,
                touching_ids=tuple(i + 1 for i in spec.touching),
                on_top_of=None if spec.on_top_of is None else spec.on_top_of + 1,
                yaw=math.remainder(spec.yaw + room_yaw, 2 * math.pi),
            )
        )
    structure = [
        StructureSurface(name, color, vertices, triangles)
        for name, color, (vertices, triangles) in _room_structure(config)
    ]
    posters = _posters(config, texture_rng)

    raycaster = o3d.t.geometry.RaycastingScene()
    # One row per ray-cast geometry: (geometry id, instance id, RGB, checker cell along x/y and
    # along z in metres, checker contrast, smooth-noise amplitude). 1e3 m cells mean "no checker".
    rows = []
    surface_look = {'floor': (0.45, 1e3, 0.18, 0.06), 'ceiling': (1e3, 1e3, 0.0, 0.03)}
    wall_look = (0.25, 1e3, 0.05, 0.05)  # vertical stripes
    for surface in structure:
        rows.append(
            (_add_mesh(raycaster, surface.vertices, surface.triangles), STRUCTURE_INSTANCE_ID, surface.base_color)
            + surface_look.get(surface.name, wall_look)
        )
    for obj in objects:
        cell = texture_rng.uniform(0.03, 0.08)
        rows.append(
            (
                _add_mesh(raycaster, obj.vertices @ T_world_room[:3, :3], obj.triangles),
                obj.id,
                obj.base_color,
                cell,
                cell,
                texture_rng.uniform(0.06, 0.12),
                0.08,
            )
        )
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
        raycaster=raycaster,
        instance=instance,
        color=color,
        checker_inv_cell=inv_cell,
        checker_inv_cell_z=inv_cell_z,
        checker_contrast=contrast,
        noise_amplitude=amplitude,
        poster_geometry=tuple(geometry_of_surface[p.surface] for p in posters),
        posters=tuple(posters),
        lamp=np.array([0.0, 0.0, config.room_height_m - 0.3], dtype=np.float32),
    )
    half = np.array([config.room_size_x_m / 2, config.room_size_y_m / 2])
    scene = SyntheticScene(
        config=config,
        room_min=np.array([-half[0], -half[1], 0.0]),
        room_max=np.array([half[0], half[1], config.room_height_m]),
        objects=tuple(objects),
        structure=tuple(structure),
        render_tables=tables,
    )
    logger.debug(
        'built synthetic scene seed=%d with %d objects: %s',
        config.seed,
        len(objects),
        ', '.join(f'{o.id}:{o.label}' for o in objects),
    )
    return scene


def _look_alike(color: tuple[int, int, int], taken: list[tuple[int, int, int]]) -> tuple[int, int, int]:
    """A shade of ``color`` (same hue and saturation, another brightness) that no other object has."""
    hue, saturation, value = colorsys.rgb_to_hsv(*(c / 255.0 for c in color))
    for factor in (0.82, 1.18, 0.7, 1.3, 0.6):
        red, green, blue = colorsys.hsv_to_rgb(hue, saturation, min(1.0, value * factor))
        candidate = (int(round(255 * red)), int(round(255 * green)), int(round(255 * blue)))
        if candidate not in taken:
            return candidate
    return color


def _add_mesh(raycaster: o3d.t.geometry.RaycastingScene, vertices: np.ndarray, triangles: np.ndarray) -> int:
    return int(
        raycaster.add_triangles(
            # Open3D's stubs omit the defaults of Tensor's dtype and device (taken from the array and the CPU).
            o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),  # type: ignore[call-overload]
            o3d.core.Tensor(np.ascontiguousarray(triangles, dtype=np.uint32)),  # type: ignore[call-overload]
        )
    )
