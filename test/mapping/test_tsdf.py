"""Tests of gpt4scene_ros.mapping.tsdf with real Open3D: synthetic scenes ray cast in numpy, and the real kitchen.

The synthetic scene lives in a z-up map frame: a green floor (z = 0), a red box
standing on it and, for the ceiling tests, a blue ceiling. Depth is rendered
analytically for a pinhole camera with pixel centres at integer coordinates.
Real data is read from ``<repo>/../shared/data/7scenes-redkitchen``; that test
skips when it is absent.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import open3d.core as o3c
import pytest

from gpt4scene_ros.common.frames import CameraIntrinsics
from gpt4scene_ros.common.settings.mapping import MappingConfig
from gpt4scene_ros.mapping.bev import BEV_BACKGROUND_RGB, BEV_EMPTY_EXTENT_M, BevImage, map_bev
from gpt4scene_ros.mapping.map_file import MAP_FILE_VERSION, MapFileError, load_map, save_map
from gpt4scene_ros.mapping.raycast import render_depth
from gpt4scene_ros.mapping.tsdf import IntegrationResult, SceneMap, decimate_frame, integration_decimation

REPO = Path(__file__).resolve().parents[2]
KITCHEN = REPO.parent / 'shared' / 'data' / '7scenes-redkitchen'

INTRINSICS = CameraIntrinsics(160, 120, 140.0, 140.0, 79.5, 59.5)


def bev_of(scene_map: SceneMap) -> BevImage:
    return map_bev(*scene_map.point_cloud(), scene_map.config)


VOXEL_M = 0.02
FLOOR_RGB = (60, 180, 75)
BOX_RGB = (200, 40, 40)
CEILING_RGB = (40, 60, 200)
BOX_MIN = np.array([0.3, 0.2, 0.0])
BOX_MAX = np.array([0.9, 0.7, 0.6])
CEILING_Z = 2.4
MAX_RANGE_M = 6.0
Z = np.array([0.0, 0.0, 1.0])

DEVICES = [
    pytest.param('CPU:0', id='cpu'),
    pytest.param(
        'CUDA:0',
        id='cuda',
        marks=pytest.mark.skipif(not o3c.cuda.is_available(), reason='Open3D has no CUDA device here'),
    ),
]


def small_config(**overrides) -> MappingConfig:
    """Settings for the synthetic scene: a small initial grid keeps each map cheap."""
    settings = dict(device='CPU:0', voxel_size_m=VOXEL_M, initial_block_count=1000)
    settings.update(overrides)
    return MappingConfig(**settings)


# -- the synthetic scene -----------------------------------------------------------------------------


def look_at(position, target) -> np.ndarray:
    """T_map_camera of an upright optical camera (x right, y down, z forward) at ``position`` facing ``target``."""
    position = np.asarray(position, float)
    forward = np.asarray(target, float) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, Z)
    if np.linalg.norm(right) < 1e-6:  # looking straight up or down
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    T = np.eye(4)
    T[:3, :3] = np.stack([right, down, forward], axis=1)
    T[:3, 3] = position
    return T


def render_scene(T_map_camera, *, ceiling=False, intrinsics=INTRINSICS):
    """Colour (uint8 RGB) and depth (float32 metres, 0 = nothing within MAX_RANGE_M) of the synthetic scene."""
    u, v = np.meshgrid(np.arange(intrinsics.width), np.arange(intrinsics.height))
    rays = (
        np.stack([(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy, np.ones(u.shape)], axis=-1)
        @ T_map_camera[:3, :3].T
    )  # map frame; t = camera z
    origin = T_map_camera[:3, 3]
    hits = np.full((3,) + u.shape, np.inf)
    with np.errstate(divide='ignore', invalid='ignore'):
        floor_t = -origin[2] / rays[..., 2]
        hits[0] = np.where(floor_t > 0, floor_t, np.inf)
        t1 = (BOX_MIN - origin) / rays
        t2 = (BOX_MAX - origin) / rays
        near = np.nanmax(np.minimum(t1, t2), axis=-1)
        far = np.nanmin(np.maximum(t1, t2), axis=-1)
        hits[1] = np.where((near <= far) & (near > 0), near, np.inf)
        if ceiling:
            ceiling_t = (CEILING_Z - origin[2]) / rays[..., 2]
            hits[2] = np.where(ceiling_t > 0, ceiling_t, np.inf)
    surface = np.argmin(hits, axis=0)
    depth = np.min(hits, axis=0)
    valid = np.isfinite(depth) & (depth < MAX_RANGE_M)
    color = np.zeros(u.shape + (3,), np.uint8)
    for index, rgb in enumerate((FLOOR_RGB, BOX_RGB, CEILING_RGB)):
        color[(surface == index) & valid] = rgb
    return color, np.where(valid, depth, 0.0).astype(np.float32)


def orbit_poses(count=12, radius=2.2, height=1.4, target=(0.2, 0.1, 0.2)):
    """Cameras on a circle around the box, looking down at it."""
    poses = []
    for azimuth in np.linspace(0.0, 2.0 * math.pi, count, endpoint=False):
        position = (radius * math.cos(azimuth), radius * math.sin(azimuth), height)
        poses.append(look_at(position, target))
    return poses


def ceiling_poses(count=8):
    """Cameras 1 m high looking up at the ceiling above the scene centre."""
    return [
        look_at((1.2 * math.cos(a), 1.2 * math.sin(a), 1.0), (0.0, 0.0, CEILING_Z))
        for a in np.linspace(0.0, 2.0 * math.pi, count, endpoint=False)
    ]


@functools.cache
def _frames(name: str):
    if name == 'orbit':
        poses, ceiling = orbit_poses(), False
    elif name == 'orbit+ceiling':
        poses, ceiling = orbit_poses() + ceiling_poses(), True
    else:
        raise KeyError(name)
    frames = []
    for T in poses:
        color, depth = render_scene(T, ceiling=ceiling)
        color.flags.writeable = False
        depth.flags.writeable = False
        frames.append((color, depth, T))
    return tuple(frames)


def frames(name='orbit'):
    return _frames(name)


def build_map(config=None, name='orbit', count=None) -> SceneMap:
    """A map of the first ``count`` frames of a synthetic sequence (all by default)."""
    scene_map = SceneMap(config or small_config())
    for color, depth, T in frames(name)[:count]:
        result = scene_map.integrate(color, depth, INTRINSICS, T)
        assert result.integrated or result.reason == 'stride', result
    return scene_map


def sorted_rows(points, colors=None):
    table = (
        np.asarray(points, np.float64)
        if colors is None
        else np.concatenate([np.asarray(points, np.float64), np.asarray(colors, np.float64)], axis=1)
    )
    return table[np.lexsort(table.T[::-1])]


def snapshot(scene_map: SceneMap):
    """What must not change when the map refuses something."""
    points, colors = scene_map.point_cloud()
    return scene_map.num_blocks, scene_map.frames_integrated, sorted_rows(points, colors)


def assert_unchanged(scene_map: SceneMap, before):
    blocks, frames_integrated, cloud = before
    assert scene_map.num_blocks == blocks
    assert scene_map.frames_integrated == frames_integrated
    after = snapshot(scene_map)[2]
    assert after.shape == cloud.shape and np.array_equal(after, cloud)


def inside_box_top(points, margin=0.06):
    return (
        (np.abs(points[:, 2] - BOX_MAX[2]) < VOXEL_M)
        & np.all(points[:, :2] > BOX_MIN[:2] + margin, axis=1)
        & np.all(points[:, :2] < BOX_MAX[:2] - margin, axis=1)
    )


def on_open_floor(points, margin=0.1):
    away_from_box = np.any(points[:, :2] < BOX_MIN[:2] - margin, axis=1) | np.any(
        points[:, :2] > BOX_MAX[:2] + margin, axis=1
    )
    return (points[:, 2] < 0.1) & away_from_box


# -- construction ----------------------------------------------------------------------------------------


def test_device_auto_resolves_to_what_open3d_has():
    scene_map = SceneMap(small_config(device='auto'))
    assert scene_map.device == ('CUDA:0' if o3c.cuda.is_available() else 'CPU:0')


@pytest.mark.skipif(o3c.cuda.is_available(), reason='needs a machine without CUDA')
def test_cuda_requested_but_absent_is_refused():
    with pytest.raises(ValueError, match='no CUDA device'):
        SceneMap(small_config(device='CUDA:0'))


def test_config_must_be_a_mapping_config():
    with pytest.raises(TypeError, match='MappingConfig'):
        SceneMap({'voxel_size_m': 0.02})


def test_empty_map():
    scene_map = SceneMap(small_config())
    assert (scene_map.num_blocks, scene_map.memory_bytes, scene_map.frames_integrated) == (0, 0, 0)
    points, colors = scene_map.point_cloud()
    assert points.shape == (0, 3) and points.dtype == np.float32 and colors.shape == (0, 3) and colors.dtype == np.uint8
    vertices, vertex_colors, triangles = scene_map.mesh()
    assert vertices.shape == (0, 3) and vertex_colors.shape == (0, 3) and triangles.shape == (0, 3)
    assert triangles.dtype == np.int32
    depth = render_depth(scene_map, INTRINSICS, frames()[0][2])
    assert depth.shape == (120, 160) and depth.dtype == np.float32 and not depth.any()


# -- integration and the surface --------------------------------------------------------------------------


@pytest.mark.parametrize('device', DEVICES)
def test_floor_and_box_are_reconstructed_with_their_colours(device):
    scene_map = build_map(small_config(device=device))
    assert scene_map.device == device
    assert scene_map.frames_integrated == 12
    assert scene_map.num_blocks > 0
    assert scene_map.memory_bytes == scene_map.num_blocks * 8**3 * 5 * 4

    points, colors = scene_map.point_cloud()
    assert points.dtype == np.float32 and colors.dtype == np.uint8 and points.shape == colors.shape
    floor = on_open_floor(points)
    assert floor.sum() > 2000
    assert np.abs(points[floor, 2]).max() < VOXEL_M, 'floor points must lie on z = 0 within a voxel'
    assert np.median(np.abs(points[floor, 2])) < VOXEL_M / 4
    np.testing.assert_allclose(np.median(colors[floor], axis=0), FLOOR_RGB, atol=3)

    top = inside_box_top(points)
    assert top.sum() > 200
    assert np.abs(points[top, 2] - BOX_MAX[2]).max() < VOXEL_M
    np.testing.assert_allclose(np.median(colors[top], axis=0), BOX_RGB, atol=3)
    # Nothing floats: every point is on the floor or on the box (TSDF edges round off by up to ~1.5 voxels).
    on_side = np.all(
        (points[:, :2] > BOX_MIN[:2] - 2 * VOXEL_M) & (points[:, :2] < BOX_MAX[:2] + 2 * VOXEL_M), axis=1
    ) & (points[:, 2] < BOX_MAX[2] + VOXEL_M)
    assert np.all((np.abs(points[:, 2]) < VOXEL_M) | on_side)


def test_integration_result():
    scene_map = SceneMap(small_config())
    color, depth, T = frames()[0]
    result = scene_map.integrate(color, depth, INTRINSICS, T)
    assert isinstance(result, IntegrationResult)
    assert (result.integrated, result.reason, result.invalid_depth_pixels) == (True, 'integrated', 0)
    assert result.new_blocks == scene_map.num_blocks > 0
    assert 0.0 < result.duration_ms < 5000.0


def test_point_cloud_is_cached_and_read_only():
    scene_map = build_map()
    points, colors = scene_map.point_cloud()
    assert scene_map.point_cloud()[0] is points
    with pytest.raises(ValueError):
        points[0, 0] = 1.0
    color, depth, T = frames()[0]
    scene_map.integrate(color, depth, INTRINSICS, T)
    assert scene_map.point_cloud()[0] is not points, 'integrating must invalidate the cached cloud'


def test_surface_extraction_with_a_point_estimate_loses_nothing():
    """Extraction is told how many points to expect (the last count plus headroom); when the map has grown past
    that, the surface is still complete: the same points as an extraction that counts them first."""
    scene_map = SceneMap(small_config(weight_threshold=1.0))
    sizes = []
    for color, depth, T in frames():
        scene_map.integrate(color, depth, INTRINSICS, T)
        points, colors = scene_map.point_cloud()
        full = scene_map._grid.extract_point_cloud(0.5)
        assert len(points) == len(full.point.positions)
        np.testing.assert_array_equal(sorted_rows(points), sorted_rows(full.point.positions.numpy().astype(np.float32)))
        sizes.append(len(points))
    assert sizes[1] > 1.25 * sizes[0] + 1024, 'the second frame must outgrow the first estimate'


def test_mesh_lies_on_the_scene():
    scene_map = build_map()
    vertices, colors, triangles = scene_map.mesh()
    assert vertices.dtype == np.float32 and colors.dtype == np.uint8 and triangles.dtype == np.int32
    assert len(triangles) > 1000 and vertices.shape == colors.shape
    assert triangles.min() >= 0 and triangles.max() < len(vertices)
    floor = on_open_floor(vertices)
    assert floor.sum() > 1000 and np.abs(vertices[floor, 2]).max() < VOXEL_M
    np.testing.assert_allclose(np.median(colors[floor], axis=0), FLOOR_RGB, atol=3)


def test_weight_threshold_counts_observations():
    color, depth, T = frames()[0]
    once = SceneMap(small_config(weight_threshold=1.0))
    once.integrate(color, depth, INTRINSICS, T)
    assert len(once.point_cloud()[0]) > 1000, 'a voxel seen once passes weight_threshold=1'
    twice_needed = SceneMap(small_config(weight_threshold=2.0))
    twice_needed.integrate(color, depth, INTRINSICS, T)
    assert len(twice_needed.point_cloud()[0]) == 0
    twice_needed.integrate(color, depth, INTRINSICS, T)
    assert len(twice_needed.point_cloud()[0]) == len(once.point_cloud()[0])


def test_reset_empties_the_map():
    scene_map = build_map(small_config(integration_stride=5))
    scene_map.reset()
    assert (scene_map.num_blocks, scene_map.frames_integrated, len(scene_map.point_cloud()[0])) == (0, 0, 0)
    color, depth, T = frames()[0]
    assert scene_map.integrate(color, depth, INTRINSICS, T).integrated, 'the first frame after a reset integrates'


# -- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize('bad_value', [np.nan, np.inf, -np.inf, -1.0], ids=['nan', 'inf', '-inf', 'negative'])
def test_invalid_depth_pixels_are_counted_and_ignored(bad_value):
    color, depth, T = frames()[0]
    bad = depth.copy()
    bad[10:30, 20:60] = bad_value  # 800 pixels
    bad[100, 5] = bad_value
    original = bad.copy()
    scene_map = SceneMap(small_config(weight_threshold=1.0))
    result = scene_map.integrate(color, bad, INTRINSICS, T)
    assert (result.integrated, result.invalid_depth_pixels) == (True, 801)
    np.testing.assert_array_equal(bad, original, err_msg="the caller's depth must not be modified")

    # Exactly as if those pixels had no measurement.
    cleaned = depth.copy()
    cleaned[10:30, 20:60] = 0.0
    cleaned[100, 5] = 0.0
    reference = SceneMap(small_config(weight_threshold=1.0))
    reference.integrate(color, cleaned, INTRINSICS, T)
    assert_unchanged(scene_map, snapshot(reference))


def test_float64_depth_is_accepted():
    color, depth, T = frames()[0]
    a, b = SceneMap(small_config(weight_threshold=1.0)), SceneMap(small_config(weight_threshold=1.0))
    a.integrate(color, depth, INTRINSICS, T)
    b.integrate(color, depth.astype(np.float64), INTRINSICS, T)
    assert_unchanged(b, snapshot(a))


@pytest.mark.parametrize(
    'make_depth, invalid',
    [
        (lambda d: np.zeros_like(d), 0),
        (lambda d: np.full_like(d, np.nan), 160 * 120),
        (lambda d: np.where(d > 0, -d, 0.0).astype(np.float32), None),
        (lambda d: np.where(d > 0, 10.0, 0.0).astype(np.float32), 0),  # beyond depth_max_m
        (lambda d: np.where(d > 0, 0.1, 0.0).astype(np.float32), 0),  # closer than depth_min_m
    ],
    ids=['zeros', 'all-nan', 'all-negative', 'beyond-depth-max', 'closer-than-depth-min'],
)
def test_frame_without_valid_depth_is_refused(make_depth, invalid):
    scene_map = build_map()
    before = snapshot(scene_map)
    color, depth, T = frames()[3]
    bad = make_depth(depth)
    result = scene_map.integrate(color, bad, INTRINSICS, T)
    assert (result.integrated, result.reason, result.new_blocks) == (False, 'no_valid_depth', 0)
    expected_invalid = int(np.count_nonzero(depth > 0)) if invalid is None else invalid
    assert result.invalid_depth_pixels == expected_invalid
    assert_unchanged(scene_map, before)


def _rigid_but_scaled(T):
    T = T.copy()
    T[:3, :3] *= 1.1
    return T


def _with_nan(T):
    T = T.copy()
    T[0, 3] = np.nan
    return T


BAD_INPUTS = {
    'colour-depth-size-mismatch': (lambda c, d, k, T: (c[:, :100], d, k, T), 'colour is 100x120 but depth is 160x120'),
    'colour-float': (lambda c, d, k, T: (c.astype(np.float32), d, k, T), 'colour must be an HxWx3 uint8'),
    'colour-grey': (lambda c, d, k, T: (c[..., 0], d, k, T), 'colour must be an HxWx3 uint8'),
    'colour-rgba': (lambda c, d, k, T: (np.dstack([c, c[..., :1]]), d, k, T), 'colour must be an HxWx3 uint8'),
    'depth-uint16': (
        lambda c, d, k, T: (c, (d * 1000).astype(np.uint16), k, T),
        'uint16 depth needs its depth_scale',
    ),  # millimetres without their scale
    'depth-3d': (lambda c, d, k, T: (c, d[..., None], k, T), 'depth must be an HxW float32'),
    'intrinsics-size': (
        lambda c, d, k, T: (c, d, dataclasses.replace(k, width=320, height=240), T),
        'intrinsics are for 320x240',
    ),
    'intrinsics-type': (lambda c, d, k, T: (c, d, k.matrix(), T), 'CameraIntrinsics'),
    'pose-nan': (lambda c, d, k, T: (c, d, k, _with_nan(T)), 'T_map_camera has NaN'),
    'pose-not-rigid': (lambda c, d, k, T: (c, d, k, _rigid_but_scaled(T)), 'T_map_camera is not rigid'),
    'pose-3x4': (lambda c, d, k, T: (c, d, k, T[:3]), 'T_map_camera must be a 4x4'),
}


@pytest.mark.parametrize('case', sorted(BAD_INPUTS))
def test_malformed_input_raises_and_leaves_the_map_unchanged(case):
    scene_map = build_map(small_config(integration_stride=2), count=11)  # frame 10 was integrated
    before = snapshot(scene_map)
    change, message = BAD_INPUTS[case]
    color, depth, T = frames()[0]
    with pytest.raises((ValueError, TypeError), match=message):
        scene_map.integrate(*change(color, depth, INTRINSICS, T))
    assert_unchanged(scene_map, before)
    # A refused call is not a frame: with stride 2 the next good frame (one after the last integrated) is skipped.
    assert scene_map.integrate(color, depth, INTRINSICS, T).reason == 'stride'


# -- memory bound -----------------------------------------------------------------------------------------


def test_frame_that_would_exceed_the_block_budget_is_refused(caplog):
    color, depth, T = frames()[0]
    probe = SceneMap(small_config())
    first_frame_blocks = probe.integrate(color, depth, INTRINSICS, T).new_blocks
    assert first_frame_blocks > 100

    tiny = SceneMap(small_config(initial_block_count=100, max_block_count=100))
    with caplog.at_level(logging.WARNING, logger='gpt4scene_ros.mapping.tsdf'):
        result = tiny.integrate(color, depth, INTRINSICS, T)
    assert (result.integrated, result.reason, result.new_blocks) == (False, 'map_full', first_frame_blocks)
    assert (tiny.num_blocks, tiny.frames_integrated, len(tiny.point_cloud()[0])) == (0, 0, 0)
    assert any('max_block_count=100' in record.getMessage() for record in caplog.records)

    # Room for the first view only: a view showing new space is refused whole, the map stays as it was.
    budget = SceneMap(
        small_config(initial_block_count=100, max_block_count=first_frame_blocks + 5, weight_threshold=1.0)
    )
    assert budget.integrate(color, depth, INTRINSICS, T).integrated
    before = snapshot(budget)
    color_2, depth_2, T_2 = frames()[6]  # the opposite side of the orbit
    result = budget.integrate(color_2, depth_2, INTRINSICS, T_2)
    assert (result.integrated, result.reason) == (False, 'map_full') and result.new_blocks > 5
    assert_unchanged(budget, before)
    assert budget.integrate(color, depth, INTRINSICS, T).integrated, 'the mapped view still integrates'


def test_revisiting_mapped_space_adds_no_blocks():
    scene_map = build_map()
    blocks, memory = scene_map.num_blocks, scene_map.memory_bytes
    for color, depth, T in frames():
        result = scene_map.integrate(color, depth, INTRINSICS, T)
        assert result.integrated and result.new_blocks == 0
    assert (scene_map.num_blocks, scene_map.memory_bytes) == (blocks, memory)
    assert scene_map.frames_integrated == 24


# -- stride and motion ------------------------------------------------------------------------------------


def test_integration_stride():
    scene_map = SceneMap(small_config(integration_stride=3))
    color, depth, T = frames()[0]
    reasons = [scene_map.integrate(color, depth, INTRINSICS, T).reason for _ in range(7)]
    assert reasons == ['integrated', 'stride', 'stride', 'integrated', 'stride', 'stride', 'integrated']
    # A due frame without depth does not restart the count: the next good frame integrates.
    assert [scene_map.integrate(color, depth, INTRINSICS, T).reason for _ in range(2)] == ['stride', 'stride']
    assert scene_map.integrate(color, np.zeros_like(depth), INTRINSICS, T).reason == 'no_valid_depth'
    assert scene_map.integrate(color, depth, INTRINSICS, T).reason == 'integrated'


def _moved(T, dx=0.0, yaw_deg=0.0):
    a = math.radians(yaw_deg)
    R = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])
    out = T.copy()
    out[:3, :3] = R @ T[:3, :3]
    out[0, 3] += dx
    return out


def test_motion_threshold_translation():
    scene_map = SceneMap(small_config(min_translation_m=0.1))
    color, depth, T = frames()[0]
    reasons = [scene_map.integrate(color, depth, INTRINSICS, _moved(T, dx=0.04 * i)).reason for i in range(6)]
    # Moved 0, 0.04, 0.08, 0.12 (>= 0.1 from 0: integrate), 0.16, 0.20 (0.08 from 0.12: skip)
    assert reasons == [
        'integrated',
        'below_motion_threshold',
        'below_motion_threshold',
        'integrated',
        'below_motion_threshold',
        'below_motion_threshold',
    ]
    # Turning does not count when only the translation threshold is set.
    assert (
        scene_map.integrate(color, depth, INTRINSICS, _moved(T, dx=0.12, yaw_deg=30)).reason == 'below_motion_threshold'
    )


def test_sensor_uint16_depth_with_its_scale_fuses_like_metres():
    """Depth reaches Open3D as the sensor's uint16 with its depth_scale: millimetres and TUM's 1/5000 m fuse the
    same surface as float metres, and uint16 without a scale is refused before the map changes."""
    in_metres = build_map(count=6)
    in_millimetres, in_tum_units = SceneMap(small_config()), SceneMap(small_config())
    for color, depth, T in frames()[:6]:
        assert in_millimetres.integrate(
            color, np.rint(depth * 1000.0).astype(np.uint16), INTRINSICS, T, depth_scale=1000.0
        ).integrated
        assert in_tum_units.integrate(
            color, np.rint(depth * 5000.0).astype(np.uint16), INTRINSICS, T, depth_scale=5000.0
        ).integrated
    np.testing.assert_array_equal(sorted_rows(*in_millimetres.point_cloud()), sorted_rows(*in_metres.point_cloud()))
    points, _ = in_tum_units.point_cloud()
    assert abs(len(points) - len(in_metres.point_cloud()[0])) < 0.02 * len(points)
    color, depth, T = frames()[6]
    before = snapshot(in_millimetres)
    for scale, words in ((None, 'needs its depth_scale'), (0.0, 'depth_scale must be'), (float('nan'), 'finite')):
        with pytest.raises(ValueError, match=words):
            in_millimetres.integrate(color, np.rint(depth * 1000.0).astype(np.uint16), INTRINSICS, T, scale)
    with pytest.raises(ValueError, match='float depth is in metres'):
        in_millimetres.integrate(color, depth, INTRINSICS, T, depth_scale=1000.0)
    assert_unchanged(in_millimetres, before)


WIDE = CameraIntrinsics(640, 480, 560.0, 560.0, 319.5, 239.5)


def box_sides(points):
    """Points on the box's four vertical sides (between 10 cm above the floor and 10 cm below the top), as
    (side axis, side coordinate) -> points: how far each side lies from where it is tells where the map put it."""
    middle = (points[:, 2] > 0.1) & (points[:, 2] < BOX_MAX[2] - 0.1)
    sides = {}
    for axis in (0, 1):
        other = 1 - axis
        along = (points[:, other] > BOX_MIN[other] + 0.05) & (points[:, other] < BOX_MAX[other] - 0.05)
        for coordinate in (BOX_MIN[axis], BOX_MAX[axis]):
            near = middle & along & (np.abs(points[:, axis] - coordinate) < 2 * VOXEL_M)
            sides[(axis, coordinate)] = points[near, axis]
    return sides


def test_integration_decimation_auto_rule():
    """Auto picks the largest step (at most 4) at which a pixel at depth_max spans at most a voxel."""
    kinect = CameraIntrinsics(640, 480, 585.0, 585.0, 320.0, 240.0)
    assert integration_decimation(MappingConfig(device='CPU:0'), kinect) == 3  # 0.02 * 585 / 3.5 = 3.3
    assert integration_decimation(MappingConfig(device='CPU:0', depth_max_m=6.0), kinect) == 1
    assert integration_decimation(MappingConfig(device='CPU:0', voxel_size_m=0.05), kinect) == 4
    assert integration_decimation(MappingConfig(device='CPU:0'), INTRINSICS) == 1  # 160 x 120: keep every pixel
    assert integration_decimation(MappingConfig(device='CPU:0', integration_decimation=2), kinect) == 2
    assert integration_decimation(MappingConfig(device='CPU:0', integration_decimation=1), kinect) == 1
    with pytest.raises(ValueError, match='integration_decimation'):
        MappingConfig(integration_decimation=9)


def test_decimate_frame_scales_intrinsics_to_the_sampled_pixels():
    """A point that projects to full-resolution pixel (u, v) projects to (u - offset) / step in the decimated
    image, and the depth there is the full image's depth at that pixel."""
    color, depth = render_scene(look_at((2.0, -1.0, 1.4), (0.5, 0.4, 0.3)), intrinsics=WIDE)
    for step in (2, 3, 4):
        small_color, small_depth, small = decimate_frame(color, depth, WIDE, step)
        assert small_depth.shape == (480 // step, 640 // step) == (small.height, small.width)
        assert small_color.shape == small_depth.shape + (3,) and small_color.dtype == np.uint8
        point = np.array([0.4, 0.3, 2.0])  # camera frame
        u, v = WIDE.fx * point[0] / point[2] + WIDE.cx, WIDE.fy * point[1] / point[2] + WIDE.cy
        us, vs = small.fx * point[0] / point[2] + small.cx, small.fy * point[1] / point[2] + small.cy
        offset = step // 2
        assert us == pytest.approx((u - offset) / step) and vs == pytest.approx((v - offset) / step)
        rows, cols = np.mgrid[0 : small.height, 0 : small.width]
        np.testing.assert_array_equal(small_depth, depth[rows * step + offset, cols * step + offset])
    assert decimate_frame(color, depth, WIDE, 1) == (color, depth, WIDE)


def test_decimated_integration_puts_the_surface_where_full_resolution_does():
    """The box fused from 640x480 frames at steps 1, 2 and 3: every side of it lies where it lies at full
    resolution, within half a voxel (in fact within a millimetre on this noise-free scene: intrinsics shifted by
    half a pixel move a side by 1.3-3 mm), and the floor stays at z = 0."""
    poses = orbit_poses(count=8)
    rendered = [render_scene(T, intrinsics=WIDE) for T in poses]
    sides = {}
    for step in (1, 2, 3):
        scene_map = SceneMap(small_config(integration_decimation=step))
        for (color, depth), T in zip(rendered, poses):
            result = scene_map.integrate(color, depth, WIDE, T)
            assert result.integrated and result.decimation == step
        points, colors = scene_map.point_cloud()
        floor = on_open_floor(points)
        assert floor.sum() > 1000 and np.median(np.abs(points[floor, 2])) < VOXEL_M / 4
        np.testing.assert_allclose(np.median(colors[floor], axis=0), FLOOR_RGB, atol=3)
        sides[step] = {key: float(np.mean(values)) for key, values in box_sides(points).items() if len(values) > 20}
        assert len(sides[step]) == 4, f'step {step}: every side of the box must be mapped'
    for step in (2, 3):
        for key, position in sides[step].items():
            # Within half a voxel as asked; in fact within a millimetre (a half-pixel error moves a side 1.3-3 mm).
            assert abs(position - sides[1][key]) < VOXEL_M / 20, (step, key, position, sides[1][key])
            assert abs(position - key[1]) < VOXEL_M, (step, key, position)


def test_motion_threshold_rotation_or_translation():
    scene_map = SceneMap(small_config(min_translation_m=0.5, min_rotation_deg=10.0))
    color, depth, T = frames()[0]
    steps = [(0.0, 0.0), (0.0, 4.0), (0.0, 8.0), (0.0, 12.0), (0.0, 16.0), (0.6, 16.0)]
    reasons = [scene_map.integrate(color, depth, INTRINSICS, _moved(T, dx, yaw)).reason for dx, yaw in steps]
    assert reasons == [
        'integrated',
        'below_motion_threshold',
        'below_motion_threshold',
        'integrated',
        'below_motion_threshold',
        'integrated',
    ]


# -- bird's-eye view ---------------------------------------------------------------------------------------


def test_bev_metadata_round_trip():
    bev = bev_of(build_map())
    height, width = bev.image.shape[:2]
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing='ij')
    centres = bev.pixel_to_map(rows, cols)
    np.testing.assert_allclose(
        bev.map_to_pixel(centres), np.stack([rows.ravel() + 0.5, cols.ravel() + 0.5], 1), atol=1e-9
    )
    # The origin is the bottom-left corner; row 0 is the largest y (north up).
    np.testing.assert_allclose(bev.map_to_pixel(bev.origin_xy_m), [[height, 0.0]], atol=1e-9)
    top_right = np.add(bev.origin_xy_m, (width * bev.metres_per_pixel, height * bev.metres_per_pixel))
    np.testing.assert_allclose(bev.map_to_pixel(top_right), [[0.0, width]], atol=1e-9)
    np.testing.assert_allclose(
        bev.pixel_to_map(height - 1, 0), [np.add(bev.origin_xy_m, 0.5 * bev.metres_per_pixel)], atol=1e-12
    )

    meta = bev.to_json()
    assert meta == {
        'origin_xy_m': list(bev.origin_xy_m),
        'metres_per_pixel': bev.metres_per_pixel,
        'width_px': width,
        'height_px': height,
        'frame_id': 'map',
        'max_height_m': 1.9,
    }
    again = BevImage.from_json(meta, bev.image)
    assert again.to_json() == meta and again.image is bev.image
    blank = BevImage.from_json(meta)
    assert blank.image.shape == bev.image.shape and np.all(blank.image == BEV_BACKGROUND_RGB)
    with pytest.raises(ValueError, match='metadata says'):
        BevImage.from_json(meta, bev.image[:-1])
    with pytest.raises(ValueError, match='malformed'):
        BevImage.from_json({'width_px': 3})


def test_bev_shows_the_box_where_the_metadata_says():
    config = small_config()
    scene_map = build_map(config)
    bev = bev_of(scene_map)
    height, width = bev.image.shape[:2]
    assert max(height, width) == config.bev_size_px and bev.image.dtype == np.uint8

    points, _ = scene_map.point_cloud()
    for mask, rgb in ((inside_box_top(points), BOX_RGB), (on_open_floor(points, margin=0.15), FLOOR_RGB)):
        pixels = np.floor(bev.map_to_pixel(points[mask, :2])).astype(int)
        assert pixels.min() >= 0 and pixels[:, 0].max() < height and pixels[:, 1].max() < width
        shown = bev.image[pixels[:, 0], pixels[:, 1]].astype(int)
        assert np.mean(np.all(np.abs(shown - rgb) <= 10, axis=1)) > 0.98

    # The box is in the +x +y quadrant of the map: the upper right of a north-up image.
    red = np.all(np.abs(bev.image.astype(int) - BOX_RGB) <= 10, axis=2)
    red_rows, red_cols = np.nonzero(red)
    box_centre = bev.map_to_pixel((BOX_MIN[:2] + BOX_MAX[:2]) / 2)[0]
    assert abs(np.median(red_rows) - box_centre[0]) < 3 and abs(np.median(red_cols) - box_centre[1]) < 3
    floor_centre = bev.map_to_pixel((0.0, 0.0))[0]
    assert box_centre[0] < floor_centre[0] and box_centre[1] > floor_centre[1]
    # The extent fits the points plus the margin.
    xy = points[:, :2]
    np.testing.assert_allclose(bev.origin_xy_m, xy.min(axis=0) - config.bev_margin_m, atol=1e-6)
    assert bev.metres_per_pixel == pytest.approx(
        (xy.max(axis=0) - xy.min(axis=0)).max() / config.bev_size_px + 2 * config.bev_margin_m / config.bev_size_px
    )
    # Empty pixels are the background.
    background = np.all(bev.image == BEV_BACKGROUND_RGB, axis=2)
    assert 0.0 < background.mean() < 0.9


def test_bev_cuts_the_ceiling():
    scene_map = build_map(small_config(), name='orbit+ceiling')
    points, _ = scene_map.point_cloud()
    ceiling = np.abs(points[:, 2] - CEILING_Z) < VOXEL_M
    assert ceiling.sum() > 500, 'the ceiling must be in the map for this test to mean anything'
    ceiling_xy = points[ceiling, :2]

    def colours_under_ceiling(bev):
        pixels = np.floor(bev.map_to_pixel(ceiling_xy)).astype(int)
        inside = (
            (pixels[:, 0] >= 0)
            & (pixels[:, 0] < bev.image.shape[0])
            & (pixels[:, 1] >= 0)
            & (pixels[:, 1] < bev.image.shape[1])
        )
        return bev.image[pixels[inside, 0], pixels[inside, 1]].astype(int)

    def share(colours, rgb):
        return np.mean(np.all(np.abs(colours - rgb) <= 10, axis=1))

    cut = bev_of(scene_map)
    assert cut.max_height_m == 1.9
    blue = np.all(np.abs(cut.image.astype(int) - CEILING_RGB) <= 30, axis=2)
    assert not blue.any(), 'no ceiling colour may remain below the cut'
    under = colours_under_ceiling(cut)
    assert share(under, FLOOR_RGB) + share(under, BOX_RGB) > 0.8, 'the floor and box show through'

    uncut = bev_of(build_map(small_config(bev_max_height_m=3.0), name='orbit+ceiling'))
    assert share(colours_under_ceiling(uncut), CEILING_RGB) > 0.9, 'without the cut the ceiling hides the floor'


def test_bev_of_an_empty_map_is_blank():
    config = small_config(bev_size_px=64)
    bev = bev_of(SceneMap(config))
    assert bev.image.shape == (64, 64, 3) and np.all(bev.image == BEV_BACKGROUND_RGB)
    assert bev.origin_xy_m == (-BEV_EMPTY_EXTENT_M / 2, -BEV_EMPTY_EXTENT_M / 2)
    assert bev.metres_per_pixel == pytest.approx(BEV_EMPTY_EXTENT_M / 64)
    # Everything above the cut: blank as well.
    above = bev_of(build_map(small_config(bev_size_px=64, bev_max_height_m=-1.0)))
    assert np.all(above.image == BEV_BACKGROUND_RGB)


# -- ray-cast depth ----------------------------------------------------------------------------------------


def test_render_depth_matches_the_scene():
    scene_map = build_map()
    for T in (frames()[2][2], look_at((-1.5, 1.6, 1.1), (0.4, 0.3, 0.3))):  # a fused pose, and a new one
        _, truth = render_scene(T)
        rendered = render_depth(scene_map, INTRINSICS, T)
        assert rendered.shape == truth.shape and rendered.dtype == np.float32
        mapped = (truth > 0) & (truth <= 3.0)  # integration stops at depth_max_m = 3.5
        both = (rendered > 0) & (truth > 0)
        assert (both & mapped).sum() > 0.85 * mapped.sum()
        error = np.abs(rendered[both] - truth[both])
        # Sub-voxel on surfaces; a few silhouette pixels of the box (rounded off in the TSDF) see the floor behind.
        assert np.median(error) < 0.004 and np.percentile(error, 90) < 0.01 and np.mean(error > 0.05) < 0.03
        assert np.mean((rendered > 0) & (truth == 0)) < 0.001


def test_render_depth_checks_its_input():
    scene_map = build_map()
    with pytest.raises(ValueError, match='T_map_camera'):
        render_depth(scene_map, INTRINSICS, _with_nan(frames()[0][2]))
    with pytest.raises(TypeError, match='CameraIntrinsics'):
        render_depth(scene_map, INTRINSICS.matrix(), frames()[0][2])
    away = look_at((0.0, 0.0, 1.0), (0.0, 0.0, 5.0))  # looking up at nothing
    assert not render_depth(scene_map, INTRINSICS, away).any()


# -- files -------------------------------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    scene_map = build_map()
    path = tmp_path / 'map.npz'
    metadata = {'T_map_world': np.eye(4).tolist(), 'frame_id': 'odom'}
    save_map(scene_map, path, metadata=metadata)
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == ['map.npz']

    loaded = SceneMap(small_config())
    loaded.integrate(*frames()[0][:2], INTRINSICS, look_at((3, 3, 1), (0, 0, 0)))  # replaced by the load
    assert load_map(loaded, path) == metadata
    assert_unchanged(loaded, snapshot(scene_map))
    T = frames()[1][2]
    np.testing.assert_array_equal(render_depth(loaded, INTRINSICS, T), render_depth(scene_map, INTRINSICS, T))
    assert loaded.memory_bytes == scene_map.memory_bytes
    # The loaded map keeps mapping: revisiting adds nothing, the first frame after a load integrates.
    result = loaded.integrate(*frames()[1][:2], INTRINSICS, T)
    assert result.integrated and result.new_blocks == 0


def test_extra_arrays_are_saved_beside_the_map(tmp_path):
    scene_map = build_map()
    path = tmp_path / 'map.npz'
    extra = {'vote_keys': np.arange(5, dtype=np.int64), 'vote_seen': np.array([3, 1, 2, 2, 9], np.int32)}
    save_map(scene_map, path, metadata={'a': 1}, arrays=extra)
    metadata, arrays = load_map(SceneMap(small_config()), path, arrays=True)
    assert metadata == {'a': 1} and set(arrays) == set(extra)
    for name, value in extra.items():
        np.testing.assert_array_equal(arrays[name], value)
        assert arrays[name].dtype == value.dtype
    assert load_map(SceneMap(small_config()), path) == {'a': 1}
    with pytest.raises(ValueError, match='numeric'):
        save_map(scene_map, tmp_path / 'bad.npz', arrays={'names': np.array(['x'])})
    assert not (tmp_path / 'bad.npz').exists()


def test_save_without_metadata_and_of_an_empty_map(tmp_path):
    save_map(SceneMap(small_config()), tmp_path / 'empty.npz')
    scene_map = build_map()
    assert load_map(scene_map, tmp_path / 'empty.npz') == {}
    assert (scene_map.num_blocks, scene_map.frames_integrated, len(scene_map.point_cloud()[0])) == (0, 0, 0)


def _array(path: Path, name: str) -> np.ndarray:
    with np.load(path) as data:
        return data[name]


def _rewrite(source: Path, target: Path, **changes):
    with np.load(source) as data:
        arrays = {name: data[name] for name in data.files}
    arrays.update(changes)
    with open(target, 'wb') as stream:
        np.savez(stream, **arrays)


@pytest.fixture
def saved_map(tmp_path):
    path = tmp_path / 'good.npz'
    save_map(build_map(), path)
    return path


REFUSED_FILES = {
    'missing': (lambda good, path: None, 'does not exist'),
    'folder': (lambda good, path: path.mkdir(), 'is not a file'),
    'garbage': (lambda good, path: path.write_bytes(os.urandom(5000)), 'not a readable map file'),
    'empty': (lambda good, path: path.write_bytes(b''), 'not a readable map file'),
    'truncated': (
        lambda good, path: path.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2]),
        'not a readable map file',
    ),
    'other-npz': (lambda good, path: np.savez(path, x=np.zeros(3)), 'missing format'),
    'wrong-format': (
        lambda good, path: _rewrite(good, path, format=np.array('something else')),
        'not a gpt4scene_ros map file',
    ),
    'newer-version': (
        lambda good, path: _rewrite(good, path, version=np.array(MAP_FILE_VERSION + 1)),
        f'version {MAP_FILE_VERSION + 1}; this build reads version {MAP_FILE_VERSION}',
    ),
    'voxel-size': (lambda good, path: save_map(SceneMap(small_config(voxel_size_m=0.04)), path), 'voxel size 0.04'),
    'block-resolution': (
        lambda good, path: save_map(SceneMap(small_config(block_resolution=4)), path),
        'block resolution 4',
    ),
    'nan-values': (
        lambda good, path: _rewrite(good, path, tsdf=np.full_like(_array(good, 'tsdf'), np.nan)),
        'tsdf has NaN',
    ),
    'shape-mismatch': (
        lambda good, path: _rewrite(good, path, weight=_array(good, 'weight')[:-1]),
        'weight is float32',
    ),
    'duplicate-keys': (
        lambda good, path: _rewrite(good, path, block_keys=np.zeros_like(_array(good, 'block_keys'))),
        'not unique',
    ),
    'bad-metadata': (lambda good, path: _rewrite(good, path, metadata=np.array('[1, 2')), 'metadata is not valid'),
}


@pytest.mark.parametrize('case', sorted(REFUSED_FILES))
def test_load_refuses_bad_files_and_keeps_the_map(case, saved_map, tmp_path):
    make, message = REFUSED_FILES[case]
    path = tmp_path / 'bad.npz'
    make(saved_map, path)
    scene_map = build_map(small_config(integration_stride=2), count=11)  # frame 10 was integrated
    before = snapshot(scene_map)
    with pytest.raises(MapFileError, match=message):
        load_map(scene_map, path)
    assert_unchanged(scene_map, before)
    color, depth, T = frames()[0]
    assert scene_map.integrate(color, depth, INTRINSICS, T).reason == 'stride', 'the mapping state is kept too'


def test_load_refuses_more_blocks_than_the_budget(saved_map):
    blocks = build_map().num_blocks
    scene_map = SceneMap(small_config(initial_block_count=100, max_block_count=blocks - 1))
    with pytest.raises(MapFileError, match=f'holds {blocks} blocks, more than max_block_count={blocks - 1}'):
        load_map(scene_map, saved_map)
    assert scene_map.num_blocks == 0


@pytest.mark.parametrize('where', ['missing-folder', 'parent-is-a-file'])
def test_save_to_an_unwritable_path_fails_cleanly(where, tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    path = tmp_path / 'no' / 'such' / 'map.npz' if where == 'missing-folder' else blocker / 'map.npz'
    with pytest.raises(OSError):
        save_map(build_map(), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['file']


def test_save_refuses_metadata_that_is_not_json(tmp_path):
    with pytest.raises(ValueError, match='JSON'):
        save_map(build_map(), tmp_path / 'map.npz', metadata={'pose': np.eye(4)})
    assert list(tmp_path.iterdir()) == []


_FAILING_SAVE = """
import resource, signal, sys
from gpt4scene_ros.common.settings.mapping import MappingConfig
from gpt4scene_ros.mapping.map_file import load_map, save_map
from gpt4scene_ros.mapping.tsdf import SceneMap
scene_map = SceneMap(MappingConfig(device='CPU:0', voxel_size_m=0.02, initial_block_count=1000))
load_map(scene_map, sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)       # a write past the limit then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), int(sys.argv[3])))
try:
    save_map(scene_map, sys.argv[2], metadata={'attempt': 2})
except OSError as error:
    print('save failed:', error)
    sys.exit(0)
sys.exit(3)
"""


def test_failed_save_leaves_the_previous_file_intact(tmp_path):
    """A save that dies mid-write (here: the file size limit hit in a child process) keeps the old file."""
    old_map = SceneMap(small_config())
    color, depth, T = frames()[0]
    old_map.integrate(color, depth, INTRINSICS, T)
    path = tmp_path / 'map.npz'
    save_map(old_map, path, metadata={'attempt': 1})
    new_map_file = tmp_path / 'bigger' / 'map.npz'
    new_map_file.parent.mkdir()
    save_map(build_map(), new_map_file)
    assert new_map_file.stat().st_size > 2 * path.stat().st_size

    limit = (path.stat().st_size + new_map_file.stat().st_size) // 2  # fails halfway through the new file
    child = subprocess.run(
        [sys.executable, '-c', _FAILING_SAVE, str(new_map_file), str(path), str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stdout + child.stderr
    assert 'save failed' in child.stdout

    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ['map.npz'], 'no temporary file may be left'
    reloaded = SceneMap(small_config())
    assert load_map(reloaded, path) == {'attempt': 1}
    assert_unchanged(reloaded, snapshot(old_map))


# -- the real kitchen -------------------------------------------------------------------------------------


@pytest.fixture
def kitchen():
    if not (KITCHEN / 'camera-intrinsics.txt').is_file():
        pytest.skip(f'real 7-Scenes data not found at {KITCHEN}')
    from gpt4scene_ros.io.open import open_sequence

    return open_sequence(KITCHEN)


def test_real_kitchen_depth_and_bev(kitchen, tmp_path, record_property):
    """Fuse every 4th of the first 800 frames in the gravity-aligned map frame, less 20 held out;
    ray-cast depth at the held-out poses must match their measured depth."""
    from gpt4scene_ros.mapping.gravity import estimate_gravity_alignment

    started = time.perf_counter()
    T_map_world = estimate_gravity_alignment(kitchen).T_map_world
    fused_positions = list(range(0, 800, 4))
    held_out = fused_positions[5::10]
    assert len(held_out) == 20
    scene_map = SceneMap(MappingConfig(device='CPU:0'))
    integrate_ms = []
    for position in fused_positions:
        if position in held_out:
            continue
        frame = kitchen.load(position)
        result = scene_map.integrate(frame.color, frame.depth_m, kitchen.intrinsics, T_map_world @ frame.T_world_camera)
        assert result.integrated, result
        integrate_ms.append(result.duration_ms)

    errors, coverage = [], []
    for position in held_out:
        frame = kitchen.load(position)
        rendered = render_depth(scene_map, kitchen.intrinsics, T_map_world @ frame.T_world_camera)
        both = (rendered > 0) & (frame.depth_m > 0)
        errors.append(np.abs(rendered[both] - frame.depth_m[both]))
        coverage.append(both.sum() / max(1, np.count_nonzero(frame.depth_m)))
    median_error_m = float(np.median(np.concatenate(errors)))
    record_property('held_out_median_abs_depth_error_m', median_error_m)
    record_property('integrate_ms_median', float(np.median(integrate_ms)))
    print(
        f'held-out median |depth error| {median_error_m * 1000:.1f} mm, coverage {np.mean(coverage):.2f}, '
        f'integrate median {np.median(integrate_ms):.1f} ms, {scene_map.num_blocks} blocks'
    )
    assert median_error_m <= 0.02
    assert np.mean(coverage) > 0.7, 'most measured pixels must be rendered'

    bev = bev_of(scene_map)
    assert max(bev.image.shape[:2]) == scene_map.config.bev_size_px
    points, colors = scene_map.point_cloud()
    below = points[:, 2] <= bev.max_height_m
    pixels = np.floor(bev.map_to_pixel(points[below, :2])).astype(int)
    height, width = bev.image.shape[:2]
    assert pixels.min() >= 0 and pixels[:, 0].max() < height and pixels[:, 1].max() < width
    unpainted = np.all(bev.image[pixels[:, 0], pixels[:, 1]] == BEV_BACKGROUND_RGB, axis=1)
    print(f'points on background pixels: {unpainted.mean():.4f}')
    assert unpainted.mean() < 0.01, "each point's pixel is painted (only white surfaces may look unpainted)"
    # A pixel shows the colour of the highest point falling into it, unless a higher neighbour's voxel-sized
    # splat covers it. About 2/3 of the pixels do here; shifting the image by one pixel gives about 1/3.
    linear = pixels[:, 0] * width + pixels[:, 1]
    order = np.lexsort((points[below, 2], linear))
    last = np.r_[linear[order][1:] != linear[order][:-1], True]
    top = order[last]
    shown = bev.image[pixels[top, 0], pixels[top, 1]].astype(int)
    agreement = np.mean(np.all(np.abs(shown - colors[below][top]) <= 1, axis=1))
    print(f'pixels showing their own highest point: {agreement:.3f}')
    assert agreement > 0.5

    png = tmp_path / 'kitchen_bev.png'
    assert cv2.imwrite(str(png), cv2.cvtColor(bev.image, cv2.COLOR_RGB2BGR))
    assert cv2.imread(str(png)).shape == bev.image.shape
    assert time.perf_counter() - started < 60.0
