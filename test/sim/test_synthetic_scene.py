"""Tests of the synthetic scene (gpt4scene_ros.sim, gpt4scene-make-scene): the procedural RGB-D scene, its files
and its ground truth.

Everything is rendered for real with Open3D's ray caster; resolutions and frame
counts are kept small where the property does not depend on them.
"""

import dataclasses
import itertools
import json
import math
import re

import cv2
import numpy as np
import pytest

from gpt4scene_ros.common.frames import CameraIntrinsics, check_rigid_transform
from gpt4scene_ros.sim.build import build_scene
from gpt4scene_ros.sim.render import camera_path, render_frame
from gpt4scene_ros.sim.scene import SyntheticSceneConfig
from gpt4scene_ros.sim.writer import write_sequence
from gpt4scene_ros.tools.make_scene import main

SMALL = SyntheticSceneConfig(num_frames=6).with_resolution(160, 120)


# -- helpers ------------------------------------------------------------------------------------------


def read_frame(folder, index):
    stem = folder / f'frame-{index:06d}'
    bgr = cv2.imread(f'{stem}.color.jpg', cv2.IMREAD_COLOR)
    depth_mm = cv2.imread(f'{stem}.depth.png', cv2.IMREAD_UNCHANGED)
    instance = cv2.imread(f'{stem}.instance.png', cv2.IMREAD_UNCHANGED)
    assert bgr is not None and depth_mm is not None and instance is not None, stem
    assert depth_mm.dtype == np.uint16 and instance.dtype == np.uint16
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), depth_mm, instance, np.loadtxt(f'{stem}.pose.txt')


def backproject(depth_m, K, T_world_camera):
    """World points (HxWx3) of every pixel; meaningless where depth is 0."""
    height, width = depth_m.shape
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    camera = np.stack([(u - K[0, 2]) / K[0, 0] * depth_m, (v - K[1, 2]) / K[1, 1] * depth_m, depth_m], axis=-1)
    return camera @ T_world_camera[:3, :3].T + T_world_camera[:3, 3]


def box_of(record):
    """World axis-aligned bounds of a ground-truth box with no yaw."""
    assert record['yaw'] == 0.0
    center, size = np.array(record['center']), np.array(record['size'])
    return center - size / 2, center + size / 2


def in_box_frame(points, record):
    """Points in the frame of a ground-truth box (origin at its centre, axes along its yaw)."""
    c, s = math.cos(record['yaw']), math.sin(record['yaw'])
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return (np.asarray(points) - record['center']) @ R


def distance_to_box(points, lo, hi):
    return np.linalg.norm(np.maximum(np.maximum(lo - points, points - hi), 0.0), axis=-1)


def axis_gaps(a, b):
    """Per-axis gap between two boxes (negative: they overlap along that axis by that much)."""
    (lo_a, hi_a), (lo_b, hi_b) = a, b
    return np.maximum(lo_a - hi_b, lo_b - hi_a)


def kinect_sigma(config, z):
    return config.noise_sigma_base_m + config.noise_sigma_quadratic_per_m * (z - config.noise_sigma_offset_m) ** 2


def files_of(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# -- determinism --------------------------------------------------------------------------------------


def test_same_seed_writes_identical_files_and_another_seed_differs(tmp_path):
    config = dataclasses.replace(SMALL, num_frames=3)
    write_sequence(config, tmp_path / 'a')
    write_sequence(config, tmp_path / 'b')
    a, b = files_of(tmp_path / 'a'), files_of(tmp_path / 'b')
    assert len(a) == 3 * 4 + 2
    assert a == b

    other = write_sequence(dataclasses.replace(config, seed=1), tmp_path / 'c')
    c = files_of(tmp_path / 'c')
    assert c.keys() == a.keys()
    assert c['frame-000000.color.jpg'] != a['frame-000000.color.jpg']
    first = build_scene(config)
    moved = [np.abs(o1.center - o2.center).max() for o1, o2 in zip(first.objects, other.objects)]
    assert max(moved) > 0.1, 'a different seed must change the layout'


def test_render_frame_is_deterministic_given_the_generator():
    scene = build_scene(SMALL)
    T = camera_path(SMALL)[2]
    first = render_frame(scene, T, SMALL, np.random.default_rng(7))
    second = render_frame(scene, T, SMALL, np.random.default_rng(7))
    third = render_frame(scene, T, SMALL, np.random.default_rng(8))
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[1], third[1]), 'the depth noise must follow the generator'
    np.testing.assert_array_equal(first[2], third[2])


# -- geometry of the written files --------------------------------------------------------------------

TURNED_HEAVY = {'clutter': 'heavy', 'room_yaw_deg': 35.0, 'furniture_yaw_deg': 30.0, 'num_chairs': 4}


@pytest.mark.parametrize('variant', [{}, TURNED_HEAVY], ids=['default', 'turned-heavy'])
def test_noise_free_depth_back_projects_onto_the_ground_truth(tmp_path, variant):
    config = SyntheticSceneConfig(num_frames=8, depth_noise=False, **variant).with_resolution(320, 240)
    scene = write_sequence(config, tmp_path)
    gt = json.loads((tmp_path / 'instances.json').read_text())
    K = np.loadtxt(tmp_path / 'camera-intrinsics.txt')
    CameraIntrinsics.from_matrix(K, config.width, config.height)
    records = {record['id']: record for record in gt['objects']}
    room_lo, room_hi = np.array(gt['room']['min']), np.array(gt['room']['max'])
    T_world_room = np.array(gt['room']['T_world_room'])
    assert math.degrees(math.atan2(T_world_room[1, 0], T_world_room[0, 0])) == pytest.approx(config.room_yaw_deg)
    checked = set()
    for index in range(config.num_frames):
        color, depth_mm, instance, T = read_frame(tmp_path, index)
        check_rigid_transform(T, 'pose')
        depth_m = depth_mm / 1000.0
        points = backproject(depth_m, K, T)
        valid = depth_mm > 0
        assert valid.mean() > 0.9
        for instance_id in np.unique(instance[valid]):
            pixels = valid & (instance == instance_id)
            if instance_id == 0:
                in_room = (points[pixels] - T_world_room[:3, 3]) @ T_world_room[:3, :3]
                to_planes = np.minimum(np.abs(in_room - room_lo), np.abs(in_room - room_hi)).min(axis=1)
                assert np.mean(to_planes < 0.01) > 0.99, f'frame {index}: structure pixels off the room planes'
                continue
            if pixels.sum() < 10:
                continue
            record = records[int(instance_id)]
            half = np.array(record['size']) / 2
            near = distance_to_box(in_box_frame(points[pixels], record), -half, half) < 0.01
            assert near.mean() > 0.95, (
                f'frame {index}: only {near.mean():.1%} of object {instance_id} back-projects onto its box'
            )
            checked.add(int(instance_id))

        # The files are the renderer's output: depth to the millimetre, colour up to JPEG loss.
        rendered_color, rendered_depth, rendered_instance = render_frame(scene, T, config)
        np.testing.assert_array_equal(instance, rendered_instance)
        assert np.abs(depth_m - rendered_depth).max() <= 0.0005 + 1e-6
        assert np.abs(color.astype(int) - rendered_color).mean() < 4.0
    assert len(checked) >= len(records) // 2, f'too few objects checked: {sorted(checked)}'


# -- sensor noise ---------------------------------------------------------------------------------------


def test_depth_noise_grows_with_depth_squared_and_drops_the_configured_fraction():
    noisy = SyntheticSceneConfig(dropout_fraction=0.05, grazing_dropout_cos=0.0)
    clean = dataclasses.replace(noisy, depth_noise=False)
    scene = build_scene(noisy)
    rng = np.random.default_rng(3)
    clean_depths, noisy_depths = [], []
    for T in camera_path(dataclasses.replace(noisy, num_frames=6)):
        clean_depths.append(render_frame(scene, T, clean)[1])
        noisy_depths.append(render_frame(scene, T, noisy, rng)[1])
    z, measured = np.concatenate(clean_depths).ravel(), np.concatenate(noisy_depths).ravel()

    assert measured[measured > 0].min() >= noisy.min_depth_m
    assert measured.max() <= noisy.max_depth_m
    in_range = (z > noisy.min_depth_m + 0.1) & (z < noisy.max_depth_m - 0.3)
    dropped = np.mean(measured[in_range] == 0)
    assert dropped == pytest.approx(noisy.dropout_fraction, abs=0.01)

    both = in_range & (measured > 0)
    error = (measured - z)[both]
    assert abs(np.mean(error)) < 0.002
    stds = []
    for low, high in ((0.5, 1.5), (2.5, 4.0)):
        in_bin = (z[both] >= low) & (z[both] < high)
        assert in_bin.sum() > 2000, f'too few pixels at {low}-{high} m'
        expected = math.sqrt(np.mean(kinect_sigma(noisy, z[both][in_bin]) ** 2))
        stds.append(np.std(error[in_bin]))
        assert stds[-1] == pytest.approx(expected, rel=0.1), f'noise at {low}-{high} m'
    assert stds[1] > 4 * stds[0]


def test_depth_is_dropped_at_grazing_incidence():
    noisy = SyntheticSceneConfig(dropout_fraction=0.0, grazing_dropout_cos=0.6)
    clean = dataclasses.replace(noisy, depth_noise=False)
    scene = build_scene(noisy)
    K = noisy.intrinsics.matrix()
    grazing_valid, steep_valid = [], []
    for T in camera_path(dataclasses.replace(noisy, num_frames=4)):
        _, z, instance = render_frame(scene, T, clean)
        _, measured, _ = render_frame(scene, T, noisy, np.random.default_rng(0))
        points = backproject(z, K, T)
        floor = (z > noisy.min_depth_m + 0.1) & (z < noisy.max_depth_m - 0.3) & (instance == 0)
        floor &= np.abs(points[..., 2]) < 0.005
        floor &= np.all(np.abs(points[..., :2]) < scene.room_max[:2] - 0.01, axis=-1)  # not the wall's foot
        cos = T[2, 3] / np.maximum(np.linalg.norm(points - T[:3, 3], axis=-1), 1e-9)  # floor normal is +z
        grazing_valid.append(measured[floor & (cos < 0.55)] > 0)
        steep_valid.append(measured[floor & (cos > 0.65)] > 0)
    grazing_valid, steep_valid = np.concatenate(grazing_valid), np.concatenate(steep_valid)
    assert len(grazing_valid) > 500 and len(steep_valid) > 500
    assert grazing_valid.mean() == 0.0
    assert steep_valid.mean() > 0.999


# -- layout and ground truth ---------------------------------------------------------------------------


@pytest.mark.parametrize('clutter', ['standard', 'heavy'])
@pytest.mark.parametrize('room', [{}, {'room_size_x_m': 4.5, 'room_size_y_m': 4.0}], ids=['default', 'smallest'])
@pytest.mark.parametrize('seed', range(6))
def test_layout_has_the_required_clutter_and_no_interpenetration(seed, room, clutter):
    config = SyntheticSceneConfig(seed=seed, clutter=clutter, **room)
    gt = json.loads(json.dumps(build_scene(config).ground_truth()))
    assert gt['frame_id'] == 'world' and gt['up_axis'] == [0, 0, 1]
    assert gt['T_map_world'] == np.eye(4).tolist()
    assert gt['seed'] == seed and gt['intrinsics']['fx'] == config.fx and gt['noise']['enabled'] is True
    objects = {record['id']: record for record in gt['objects']}
    assert sorted(objects) == list(range(1, len(objects) + 1))
    labels = [record['label'] for record in objects.values()]
    for label in ('table', 'mug', 'bottle', 'ball'):
        assert label in labels
    assert labels.count('chair') == 2
    assert {'cabinet', 'shelf'} & set(labels) and {'sofa', 'bed'} & set(labels)
    for record in objects.values():
        assert set(record['tags']) <= {'small', 'flat', 'touching', 'stacked', 'furniture'}
    boxes = {i: box_of(record) for i, record in objects.items()}

    def tagged(tag):
        return [i for i, record in objects.items() if tag in record['tags']]

    assert tagged('small') and len(tagged('furniture')) >= 5
    assert tagged('flat') and all(objects[i]['size'][2] < 0.03 for i in tagged('flat'))
    assert len(tagged('touching')) >= 2
    for i in tagged('touching'):
        assert objects[i]['touching_ids']
        for j in objects[i]['touching_ids']:
            assert i in objects[j]['touching_ids']
            gaps = axis_gaps(boxes[i], boxes[j])
            assert abs(gaps.max()) < 0.005, f'{i} and {j} do not touch: per-axis gaps {gaps}'
            assert np.sum(gaps < -0.05) == 2, 'touching boxes share a face, not just an edge'
    # A stack's upper objects rest on a 'stacked' object; its bottom one stands on the floor or a table.
    stacked = [
        i
        for i in tagged('stacked')
        if objects[i]['on_top_of'] is not None and 'stacked' in objects[objects[i]['on_top_of']]['tags']
    ]
    assert stacked
    for top in stacked:
        bottom = objects[top]['on_top_of']
        (lo_top, hi_top), (lo_bottom, hi_bottom) = boxes[top], boxes[bottom]
        assert abs(lo_top[2] - hi_bottom[2]) < 0.005
        assert np.all(lo_top[:2] >= lo_bottom[:2] - 1e-6) and np.all(hi_top[:2] <= hi_bottom[:2] + 1e-6)

    room_lo, room_hi = np.array(gt['room']['min']), np.array(gt['room']['max'])
    assert room_lo[2] == 0.0 and room_hi[2] == config.room_height_m
    for i, (lo, hi) in boxes.items():
        assert np.all(lo >= room_lo - 1e-5) and np.all(hi <= room_hi + 1e-5), f'object {i} leaves the room'
        assert lo[2] == pytest.approx(0.0, abs=1e-5) or objects[i]['on_top_of'] is not None, f'{i} floats'
    for i, j in itertools.combinations(boxes, 2):
        related = j in objects[i]['touching_ids'] or objects[i]['on_top_of'] == j or objects[j]['on_top_of'] == i
        penetration = -axis_gaps(boxes[i], boxes[j]).max()
        if related:
            assert penetration < 0.001, f'objects {i} and {j} interpenetrate by {penetration:.4f} m'
        else:
            assert penetration < -0.01, f'objects {i} and {j} overlap or touch (gap {-penetration:.4f} m)'
    colors = [tuple(record['color_rgb']) for record in objects.values()]
    assert len(set(colors)) == len(colors)
    if clutter == 'heavy':
        assert len(objects) >= 20 and len(tagged('touching')) >= 4 and len(stacked) >= 2
        assert labels.count('magazine') + labels.count('book') >= 3


@pytest.mark.parametrize('seed', range(4))
def test_clean_rooms_have_only_objects_that_stand_apart(seed):
    gt = build_scene(SyntheticSceneConfig(seed=seed, clutter='none')).ground_truth()
    objects = gt['objects']
    assert 10 <= len(objects) <= 14
    assert not any(set(record['tags']) & {'flat', 'touching', 'stacked'} for record in objects)
    for a, b in itertools.combinations(objects, 2):
        if a['on_top_of'] == b['id'] or b['on_top_of'] == a['id']:
            continue
        assert axis_gaps(box_of(a), box_of(b)).max() > 0.03, f'{a["label"]} and {b["label"]} are too close'


@pytest.mark.parametrize('seed', range(4))
def test_turned_rooms_and_furniture_report_tight_oriented_boxes(seed):
    config = SyntheticSceneConfig(seed=seed, clutter='heavy', room_yaw_deg=-50.0, furniture_yaw_deg=30.0, num_chairs=4)
    scene = build_scene(config)
    records = {record['id']: record for record in scene.ground_truth()['objects']}
    room_yaw = math.radians(config.room_yaw_deg)
    chairs = 0
    for obj in scene.objects:
        record = records[obj.id]
        local = in_box_frame(obj.vertices, record)
        half = np.array(record['size']) / 2
        assert np.all(np.abs(local) <= half + 1e-6), f'{obj.label} {obj.id} leaves its box'
        np.testing.assert_allclose(np.abs(local).max(axis=0), half, atol=1e-6, err_msg='the box is not tight')
        offset = math.remainder(record['yaw'] - room_yaw, math.pi / 2)
        if obj.label == 'chair':
            chairs += 1
            assert abs(offset) <= math.radians(30.0) + 1e-5
        elif obj.label in ('table', 'sofa', 'bed', 'cabinet', 'shelf', 'mug', 'bottle', 'magazine'):
            assert offset == pytest.approx(0.0, abs=1e-5), f'{obj.label} should follow the room'
    assert chairs >= 3
    # The camera path turns with the room: it stays inside it.
    T_world_room = np.array(scene.ground_truth()['room']['T_world_room'])
    for T in camera_path(dataclasses.replace(config, num_frames=40)):
        in_room = (T[:3, 3] - T_world_room[:3, 3]) @ T_world_room[:3, :3]
        assert np.all(in_room > scene.room_min + 0.3) and np.all(in_room < scene.room_max - 0.3)


def azimuth_span_deg(azimuths):
    """Smallest arc (degrees) containing all the given directions."""
    seen = np.sort(np.mod(azimuths, 2 * np.pi))
    largest_gap = np.max(np.diff(np.concatenate([seen, seen[:1] + 2 * np.pi])))
    return math.degrees(2 * np.pi - largest_gap)


def test_every_object_is_seen_from_several_sides_along_the_default_path():
    config = SyntheticSceneConfig(depth_noise=False).with_resolution(160, 120)
    assert config.num_frames == 300
    scene = build_scene(config)
    K = config.intrinsics.matrix()
    azimuths = {obj.id: [] for obj in scene.objects}
    ceiling_pixels = 0
    for T in camera_path(config):
        check_rigid_transform(T, 'T_world_camera')
        position = T[:3, 3]
        assert np.all(position > scene.room_min + 0.3) and np.all(position < scene.room_max - 0.3)
        for obj in scene.objects:
            assert distance_to_box(position, obj.aabb_min - 0.05, obj.aabb_max + 0.05) > 0, (
                f'camera inside {obj.label} {obj.id}'
            )
        _, depth_m, instance = render_frame(scene, T, config)
        ids, counts = np.unique(instance, return_counts=True)
        for instance_id, count in zip(ids, counts):
            if instance_id and count >= 10:
                offset = position - scene.object_by_id(int(instance_id)).center
                azimuths[int(instance_id)].append(math.atan2(offset[1], offset[0]))
        points = backproject(depth_m, K, T)
        ceiling_pixels += int(np.sum((depth_m > 0) & (points[..., 2] > config.room_height_m - 0.01)))
    table = next(obj for obj in scene.objects if obj.label == 'table')
    for obj in scene.objects:
        assert len(azimuths[obj.id]) >= 20, f'{obj.label} {obj.id} seen in only {len(azimuths[obj.id])} frames'
        span = azimuth_span_deg(azimuths[obj.id])
        # Things at the walls can only be seen from the room side; things at the table from all round.
        wanted = 150 if obj.label in ('table', 'chair') or obj.on_top_of == table.id else 45
        assert span > wanted, f'{obj.label} {obj.id} seen from a {span:.0f} degree arc only'
    assert ceiling_pixels > 100, 'the ceiling must be observed (the BEV has to cut it away)'


def test_camera_path_is_a_smooth_closed_loop():
    poses = np.array(camera_path(SyntheticSceneConfig(num_frames=120)))
    closed = np.concatenate([poses, poses[:1]])
    steps = np.linalg.norm(np.diff(closed[:, :3, 3], axis=0), axis=1)
    assert steps.max() < 2 * np.median(steps) and steps.max() < 0.3
    turns = np.degrees(np.arccos(np.clip(np.sum(closed[1:, :3, 2] * closed[:-1, :3, 2], axis=1), -1, 1)))
    assert turns.max() < 20
    assert np.all(poses[:, 2, 2] < -0.05), 'the camera looks downwards'
    heights = poses[:, 2, 3]
    assert heights.min() >= 1.2 and heights.max() <= 1.6


# -- validation and the command line -------------------------------------------------------------------


@pytest.mark.parametrize(
    'name, value, rule',
    [
        ('seed', -1, 'must be >= 0'),
        ('seed', 1.5, 'expected int'),
        ('num_frames', 0, 'must be >= 1'),
        ('width', 0, 'must be >= 16'),
        ('height', 8, 'must be >= 16'),
        ('fx', 0.0, 'must be > 0.0'),
        ('fy', -1.0, 'must be > 0.0'),
        ('cx', 1000.0, 'must be <= width=640'),
        ('cy', -1.0, 'must be >= 0.0'),
        ('depth_noise', 'yes', 'expected bool'),
        ('noise_sigma_base_m', -0.001, 'must be >= 0.0'),
        ('noise_sigma_quadratic_per_m', float('nan'), 'must be finite'),
        ('dropout_fraction', 1.0, 'must be < 1.0'),
        ('grazing_dropout_cos', -0.1, 'must be >= 0.0'),
        ('min_depth_m', 0.0, 'must be > 0.0'),
        ('max_depth_m', 0.2, 'must be > min_depth_m=0.3'),
        ('max_depth_m', 100.0, 'must be <= 65.535'),
        ('room_size_x_m', 3.0, 'must be >= 4.5'),
        ('room_size_y_m', 50.0, 'must be <= 10.0'),
        ('room_height_m', 2.0, 'must be >= 2.2'),
        ('camera_height_m', 2.5, r'must be in \[1\.30, 2\.20\]'),
        ('camera_wall_margin_m', 0.3, r'must be in \[0\.57, 1\.50\]'),
        ('camera_look_aside_deg', 200.0, 'must be <= 180.0'),
        ('camera_bob_m', -0.1, 'must be >= 0.0'),
        ('jpeg_quality', 0, 'must be >= 1'),
        ('clutter', 'lots', r"must be one of \['none', 'standard', 'heavy'\]"),
        ('num_chairs', 5, 'must be <= 4'),
        ('room_yaw_deg', 200.0, 'must be <= 180.0'),
        ('furniture_yaw_deg', 60.0, 'must be <= 45.0'),
    ],
)
def test_config_rejects_bad_values(name, value, rule):
    with pytest.raises(ValueError, match=rf'SyntheticSceneConfig\.{name}={re.escape(repr(value))}: {rule}'):
        SyntheticSceneConfig(**{name: value})


def test_render_frame_rejects_bad_arguments():
    scene = build_scene(SMALL)
    T = camera_path(SMALL)[0]
    with pytest.raises(ValueError, match='rng'):
        render_frame(scene, T, SMALL)
    bad = T.copy()
    bad[:3, :3] *= 2.0
    with pytest.raises(ValueError, match='T_world_camera'):
        render_frame(scene, bad, SMALL, np.random.default_rng(0))


def test_write_sequence_refuses_foreign_folders_and_replaces_its_own(tmp_path):
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'notes.txt').write_text('mine')
    with pytest.raises(ValueError, match='not written by'):
        write_sequence(SMALL, foreign)
    assert sorted(p.name for p in foreign.iterdir()) == ['notes.txt']

    own = tmp_path / 'own'
    write_sequence(dataclasses.replace(SMALL, num_frames=3), own)
    (own / 'notes.txt').write_text('kept')
    write_sequence(dataclasses.replace(SMALL, num_frames=2), own)
    names = sorted(p.name for p in own.iterdir())
    assert [n for n in names if n.startswith('frame-')] == [
        f'frame-{i:06d}.{kind}' for i in range(2) for kind in ('color.jpg', 'depth.png', 'instance.png', 'pose.txt')
    ]
    assert 'notes.txt' in names
    assert json.loads((own / 'instances.json').read_text())['num_frames'] == 2


def test_cli_returns_2_on_bad_arguments(tmp_path, capsys):
    assert main([]) == 2
    assert main([str(tmp_path / 'x'), '--frames', 'many']) == 2
    assert main([str(tmp_path / 'x'), '--frames', '0']) == 2
    assert 'num_frames' in capsys.readouterr().err
    assert main([str(tmp_path / 'x'), '--width', '-5']) == 2
    assert not (tmp_path / 'x').exists()


def test_cli_writes_a_sequence(tmp_path, capsys):
    out = tmp_path / 'scene'
    assert (
        main(
            [
                str(out),
                '--seed',
                '3',
                '--frames',
                '2',
                '--no-noise',
                '--width',
                '64',
                '--height',
                '48',
                '--clutter',
                'heavy',
                '--chairs',
                '3',
                '--room-yaw',
                '20',
                '--furniture-yaw',
                '10',
            ]
        )
        == 0
    )
    assert 'frames' in capsys.readouterr().out
    gt = json.loads((out / 'instances.json').read_text())
    assert gt['seed'] == 3 and gt['noise']['enabled'] is False and gt['num_frames'] == 2
    assert gt['config']['clutter'] == 'heavy' and gt['config']['room_yaw_deg'] == 20.0
    assert [record['label'] for record in gt['objects']].count('chair') == 3
    K = np.loadtxt(out / 'camera-intrinsics.txt')
    np.testing.assert_allclose(K, [[525 * 64 / 640, 0, 31.5], [0, 525 * 48 / 480, 23.5], [0, 0, 1]])
    color, depth_mm, instance, T = read_frame(out, 1)
    assert color.shape == (48, 64, 3) and depth_mm.shape == instance.shape == (48, 64)
    check_rigid_transform(T)
