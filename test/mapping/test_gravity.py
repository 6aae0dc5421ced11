"""Tests of gpt4scene_ros.mapping.gravity on ray-cast synthetic scenes and on the real 7-Scenes data.

Real data is read from ``<repo>/../shared/data/7scenes-redkitchen``; those tests
skip when it is absent.
"""

import math
from pathlib import Path

import numpy as np
import pytest

from gpt4scene_ros.common.frames import CameraIntrinsics, RgbdFrame, check_rigid_transform
from gpt4scene_ros.io.open import open_sequence
from gpt4scene_ros.io.sequence import FrameError
from gpt4scene_ros.mapping import gravity
from gpt4scene_ros.mapping.gravity import (
    GravityAlignment,
    estimate_gravity_alignment,
    frame_surface_samples,
    identity_alignment,
    rotation_between,
)

REPO = Path(__file__).resolve().parents[2]
SEVEN_SCENES = REPO.parent / 'shared' / 'data' / '7scenes-redkitchen'
README_PLANE_NORMAL = np.array([0.0, 0.89, 0.46])  # /work/shared/data/README.md: horizontal planes' normal
Z = np.array([0.0, 0.0, 1.0])


def angle_deg(a, b):
    a = np.asarray(a, float) / np.linalg.norm(a)
    b = np.asarray(b, float) / np.linalg.norm(b)
    return math.degrees(math.acos(np.clip(a @ b, -1.0, 1.0)))


def axis_angle(axis, degrees):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = math.radians(degrees)
    return np.eye(3) + math.sin(a) * K + (1 - math.cos(a)) * K @ K


# -- a synthetic scene: floor, a table-sized box and a wall, ray cast in a z-up "scene" frame ----------

INTRINSICS = CameraIntrinsics(160, 120, 140.0, 140.0, 79.5, 59.5)
BOX_MIN = np.array([-0.5, -0.4, 0.0])
BOX_MAX = np.array([0.5, 0.4, 0.75])
WALL_X = 2.0
MAX_RANGE_M = 6.0


def look_at(position, target):
    """Camera-to-scene rotation of an upright optical camera (x right, y down, z forward)."""
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, Z)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward], axis=1)


def render_depth(R_scene_camera, position):
    """Depth (metres, mm-quantised like a sensor) of the floor z=0, the box and the wall x=WALL_X."""
    u, v = np.meshgrid(np.arange(INTRINSICS.width), np.arange(INTRINSICS.height))
    rays = (
        np.stack([(u - INTRINSICS.cx) / INTRINSICS.fx, (v - INTRINSICS.cy) / INTRINSICS.fy, np.ones(u.shape)], axis=-1)
        @ R_scene_camera.T
    )  # scaled so that camera z = 1
    hits = []
    with np.errstate(divide='ignore', invalid='ignore'):
        hits.append(np.where(rays[..., 2] < 0, -position[2] / rays[..., 2], np.inf))
        hits.append(np.where(rays[..., 0] > 0, (WALL_X - position[0]) / rays[..., 0], np.inf))
        t1 = (BOX_MIN - position) / rays
        t2 = (BOX_MAX - position) / rays
        t_near = np.nanmax(np.minimum(t1, t2), axis=-1)
        t_far = np.nanmin(np.maximum(t1, t2), axis=-1)
    hits.append(np.where((t_near <= t_far) & (t_near > 0), t_near, np.inf))
    depth = np.min(hits, axis=0)
    depth[~np.isfinite(depth) | (depth > MAX_RANGE_M)] = 0.0
    return (np.round(depth * 1000.0) / 1000.0).astype(np.float32)


class SyntheticSequence:
    """Frames of the synthetic scene seen in a world frame with T_world_scene; positions in ``broken`` fail."""

    def __init__(self, T_world_scene, cameras, broken=(), zero_depth=False):
        self.root = 'synthetic'
        self.intrinsics = INTRINSICS
        self.T_world_scene = T_world_scene
        self.cameras = cameras
        self.broken = set(broken)
        self.zero_depth = zero_depth

    def __len__(self):
        return len(self.cameras)

    def load(self, i):
        if i in self.broken:
            raise FrameError(f'synthetic frame {i} is broken')
        R, position = self.cameras[i]
        T_scene_camera = np.eye(4)
        T_scene_camera[:3, :3] = R
        T_scene_camera[:3, 3] = position
        depth = render_depth(R, position)
        if self.zero_depth:
            depth[:] = 0
        color = np.zeros(depth.shape + (3,), np.uint8)
        return RgbdFrame(i, i / 30.0, color, depth, self.T_world_scene @ T_scene_camera)


def one_sided_cameras(count=12, pitch_target_height=0.0):
    """Cameras on one side of the box, 1.5 m high, looking down at it: their mean y axis is far from down."""
    cameras = []
    for azimuth in np.linspace(math.radians(120), math.radians(240), count):
        position = np.array([2.2 * math.cos(azimuth), 2.2 * math.sin(azimuth), 1.5])
        target = np.array([0.0, 0.0, pitch_target_height])
        cameras.append((look_at(position, target), position))
    return cameras


def world_from_scene(R, t):
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


@pytest.mark.parametrize(
    'R_world_scene',
    [
        axis_angle((1, 2, 0.5), 40.0),
        axis_angle((1, 0, 0), -117.5),  # about the 7-Scenes tilt
        axis_angle((0.3, -1, 0.2), 160.0),
        np.eye(3),
    ],
    ids=['oblique-40', '7scenes-like', 'nearly-upside-down', 'identity'],
)
def test_synthetic_up_is_recovered(R_world_scene):
    T_world_scene = world_from_scene(R_world_scene, (0.3, -1.2, 2.0))
    cameras = one_sided_cameras()
    sequence = SyntheticSequence(T_world_scene, cameras)
    true_up = R_world_scene @ Z

    # The cameras look down by about 30 deg from one side: the prior alone is far off.
    prior = -np.mean([R_world_scene @ R[:, 1] for R, _ in cameras], axis=0)
    assert angle_deg(prior, true_up) > 25.0

    alignment = estimate_gravity_alignment(sequence, max_frames=12)
    assert angle_deg(alignment.up_in_world, true_up) < 1.0
    check_rigid_transform(alignment.T_map_world)

    # Floor and box top land at z = 0 and z = 0.75 in the map frame.
    T_map_scene = alignment.T_map_world @ T_world_scene
    for scene_point, height in [((1.3, 0.7, 0.0), 0.0), ((0.1, -0.2, 0.75), 0.75)]:
        map_point = T_map_scene[:3, :3] @ scene_point + T_map_scene[:3, 3]
        assert map_point[2] == pytest.approx(height, abs=0.01)
    assert alignment.support > 1000
    assert 'surface normals' in alignment.method


def test_smallest_rotation_keeps_the_yaw():
    # The world is the scene tilted about x only: the map must undo exactly that tilt, no extra yaw.
    R_world_scene = axis_angle((1, 0, 0), -117.5)
    sequence = SyntheticSequence(world_from_scene(R_world_scene, (0, 0, 0)), one_sided_cameras())
    alignment = estimate_gravity_alignment(sequence, max_frames=12)
    np.testing.assert_allclose(alignment.T_map_world[:3, :3], R_world_scene.T, atol=0.02)


def test_broken_frames_are_skipped():
    sequence = SyntheticSequence(
        world_from_scene(axis_angle((1, 2, 0.5), 40.0), (0, 0, 0)), one_sided_cameras(), broken={0, 3, 4, 7}
    )
    alignment = estimate_gravity_alignment(sequence, max_frames=12)
    assert angle_deg(alignment.up_in_world, axis_angle((1, 2, 0.5), 40.0) @ Z) < 1.0
    assert 'from 8 frames' in alignment.method


def test_all_zero_depth_raises():
    sequence = SyntheticSequence(np.eye(4), one_sided_cameras(), zero_depth=True)
    with pytest.raises(ValueError, match='valid surface normals'):
        estimate_gravity_alignment(sequence)


def test_no_loadable_frame_raises():
    sequence = SyntheticSequence(np.eye(4), one_sided_cameras(count=3), broken={0, 1, 2})
    with pytest.raises(ValueError, match='none of the 3 frames'):
        estimate_gravity_alignment(sequence)


def test_bad_max_frames():
    with pytest.raises(ValueError, match='max_frames'):
        estimate_gravity_alignment(SyntheticSequence(np.eye(4), one_sided_cameras()), max_frames=0)


def test_surface_normals_of_the_floor():
    position = np.array([0.0, -3.0, 1.5])
    R = look_at(position, np.array([0.0, 1.0, 0.0]))  # looks past the box at the floor
    frame = SyntheticSequence(np.eye(4), [(R, position)]).load(0)
    points, normals = frame_surface_samples(frame, INTRINSICS, pixel_step=2)
    assert len(points) > 500
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-9)
    assert np.all(np.einsum('ij,ij->i', normals, position - points) > 0), 'normals must face the camera'
    on_floor = np.abs(points[:, 2]) < 1e-3
    assert on_floor.sum() > 1000
    tilt = np.degrees(np.arccos(np.clip(normals[on_floor] @ Z, -1, 1)))
    assert np.median(tilt) < 0.5 and np.percentile(tilt, 95) < 2.0 and tilt.max() < 15.0


def test_depth_discontinuities_and_creases_are_dropped():
    position = np.array([-2.0, 0.0, 1.2])
    R = look_at(position, np.array([0.0, 0.0, 0.4]))  # the box in front of the wall, on the floor
    frame = SyntheticSequence(np.eye(4), [(R, position)]).load(0)
    points, normals = frame_surface_samples(frame, INTRINSICS, pixel_step=2)
    # Every kept point's normal is one of the scene's face normals: no blends across edges.
    faces = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0], [0, 1, 0]])
    assert np.all(np.max(normals @ faces.T, axis=1) > math.cos(math.radians(10)))


@pytest.mark.parametrize('check', ['discontinuity', 'crease'])
def test_each_edge_check_alone_drops_a_depth_step(monkeypatch, check):
    # Two fronto-parallel planes, 1.0 m and 1.6 m away: every true normal is -z (facing the camera).
    if check == 'discontinuity':
        monkeypatch.setattr(gravity, 'MAX_CREASE_DEG', 180.0)
    else:
        monkeypatch.setattr(gravity, 'MAX_DEPTH_JUMP_RATIO', 1e9)
    depth = np.full((INTRINSICS.height, INTRINSICS.width), 1.0, np.float32)
    depth[:, 80:] = 1.6
    frame = RgbdFrame(0, 0.0, np.zeros(depth.shape + (3,), np.uint8), depth, np.eye(4))
    points, normals = frame_surface_samples(frame, INTRINSICS, pixel_step=2)
    assert len(points) > 3000
    assert np.all(normals @ -Z > math.cos(math.radians(1)))


# -- small pieces --------------------------------------------------------------------------------


def test_rotation_between():
    rng = np.random.default_rng(1)
    for _ in range(50):
        a, b = rng.normal(size=3), rng.normal(size=3)
        R = rotation_between(a, b)
        check_rigid_transform(np.block([[R, np.zeros((3, 1))], [np.zeros((1, 3)), np.ones((1, 1))]]))
        np.testing.assert_allclose(R @ (a / np.linalg.norm(a)), b / np.linalg.norm(b), atol=1e-12)
        # Smallest: the axis is perpendicular to both, so the rotation angle equals the angle between them.
        assert math.degrees(math.acos((np.trace(R) - 1) / 2)) == pytest.approx(angle_deg(a, b), abs=1e-6)
    np.testing.assert_allclose(rotation_between(Z, Z), np.eye(3))
    R = rotation_between(-Z, Z)
    np.testing.assert_allclose(R @ -Z, Z, atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)


def test_identity_alignment():
    alignment = identity_alignment('the world frame of this recording is already z-up')
    np.testing.assert_array_equal(alignment.T_map_world, np.eye(4))
    np.testing.assert_array_equal(alignment.up_in_world, Z)
    assert alignment.support == 0 and alignment.floor_height_m == 0.0
    assert 'already z-up' in alignment.method
    with pytest.raises(ValueError, match='reason'):
        identity_alignment('  ')


def test_alignment_is_validated_and_read_only():
    with pytest.raises(ValueError, match='not rigid'):
        GravityAlignment(np.diag([2.0, 1, 1, 1]), Z, 0.0, 0, 'scaled')
    with pytest.raises(ValueError, match='unit 3-vector'):
        GravityAlignment(np.eye(4), np.array([0.0, 0.0, 2.0]), 0.0, 0, 'long up')
    with pytest.raises(ValueError, match='method'):
        GravityAlignment(np.eye(4), Z, 0.0, 0, '')
    alignment = identity_alignment('test')
    with pytest.raises(ValueError):
        alignment.T_map_world[0, 0] = 5.0


# -- real data ----------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def kitchen():
    if not (SEVEN_SCENES / 'frame-000000.depth.png').is_file():
        pytest.skip(f'real data not found at {SEVEN_SCENES}')
    sequence = open_sequence(SEVEN_SCENES)
    return sequence, estimate_gravity_alignment(sequence)


@pytest.fixture(scope='module')
def kitchen_in_map(kitchen):
    """Surface samples (map points, map normals) and all valid depth points (map) of 20 frames."""
    sequence, alignment = kitchen
    T = alignment.T_map_world
    points, normals, all_points = [], [], []
    k = sequence.intrinsics
    for i in np.linspace(3, len(sequence) - 4, 20).round().astype(int):  # other frames than the estimate's
        frame = sequence.load(int(i))
        p, n = frame_surface_samples(frame, k, pixel_step=4)
        points.append(p @ T[:3, :3].T + T[:3, 3])
        normals.append(n @ T[:3, :3].T)
        v, u = np.nonzero(frame.depth_m[::8, ::8] > 0)
        z = frame.depth_m[::8, ::8][v, u]
        camera = np.stack([(u * 8 - k.cx) / k.fx * z, (v * 8 - k.cy) / k.fy * z, z], axis=1)
        T_map_camera = T @ frame.T_world_camera
        all_points.append(camera @ T_map_camera[:3, :3].T + T_map_camera[:3, 3])
    return np.concatenate(points), np.concatenate(normals), np.concatenate(all_points)


def test_kitchen_up_vector(kitchen):
    _, alignment = kitchen
    assert angle_deg(alignment.up_in_world, -README_PLANE_NORMAL) < 5.0
    T = check_rigid_transform(alignment.T_map_world)
    np.testing.assert_allclose(T[:3, :3] @ alignment.up_in_world, Z, atol=1e-9)
    assert alignment.support > 10000


def test_kitchen_table_top_is_horizontal(kitchen_in_map):
    points, normals, _ = kitchen_in_map
    horizontal = (normals[:, 2] >= math.cos(math.radians(15))) & (points[:, 2] > 0.3)
    counts, edges = np.histogram(points[horizontal, 2], bins=np.arange(0.3, 2.5, 0.02))
    top = np.argmax(counts)
    height = (edges[top] + edges[top + 1]) / 2
    assert 0.6 < height < 0.9, f'dominant raised horizontal surface at {height:.2f} m; a table top expected'
    in_bin = horizontal & (np.abs(points[:, 2] - height) < 0.03)
    assert in_bin.sum() > 5000
    # Its normals average to +z, and a plane fitted to its points (not its normals) is level.
    mean_normal = normals[in_bin].mean(axis=0)
    assert angle_deg(mean_normal, Z) < 1.5
    centred = points[in_bin] - points[in_bin].mean(axis=0)
    plane_normal = np.linalg.eigh(centred.T @ centred)[1][:, 0]
    assert min(angle_deg(plane_normal, Z), angle_deg(-plane_normal, Z)) < 2.5
    assert np.std(centred[:, 2]) < 0.012


def test_kitchen_floor_is_at_zero(kitchen_in_map):
    points, normals, all_points = kitchen_in_map
    assert np.mean(all_points[:, 2] >= -0.05) > 0.99
    facing_up = normals[:, 2] >= math.cos(math.radians(15))
    assert np.mean(np.abs(points[facing_up, 2]) < 0.05) > 0.02, 'no floor near z = 0'
