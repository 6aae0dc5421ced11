"""gpt4scene-process: the mapping core on a recorded folder, without ROS."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from gpt4scene_ros.sim.scene import SyntheticSceneConfig
from gpt4scene_ros.sim.writer import write_sequence
from gpt4scene_ros.tools.process import main


@pytest.fixture(scope='module')
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp('offline') / 'scene'
    write_sequence(SyntheticSceneConfig(seed=4, num_frames=24).with_resolution(320, 240), folder)
    return folder


def read_ply(path):
    data = path.read_bytes()
    header, body = data.split(b'end_header\n', 1)
    count = int(next(line for line in header.decode().splitlines() if line.startswith('element vertex')).split()[2])
    vertices = np.frombuffer(
        body, dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('r', 'u1'), ('g', 'u1'), ('b', 'u1')], count=count
    )
    return np.stack([vertices['x'], vertices['y'], vertices['z']], axis=1)


def test_writes_bev_metadata_cloud_and_timing(scene, tmp_path, capsys):
    out = tmp_path / 'out'
    assert main([str(scene), str(out), '--voxel-size', '0.04', '--quiet']) == 0
    assert 'integrated: 24' in capsys.readouterr().out
    bev = cv2.imread(str(out / 'bev.png'))
    meta = json.loads((out / 'bev_meta.json').read_text())
    assert (meta['width_px'], meta['height_px']) == (bev.shape[1], bev.shape[0]) and max(bev.shape[:2]) == 512
    T_map_world = np.array(meta['T_map_world'])
    np.testing.assert_allclose(T_map_world[:3, :3], np.eye(3), atol=2e-3)  # the synthetic world is already z-up
    assert 'up' in meta['gravity_alignment']
    points = read_ply(out / 'map.ply')
    assert len(points) > 1000
    truth = json.loads((scene / 'instances.json').read_text())
    low, high = np.array(truth['room']['min']), np.array(truth['room']['max'])
    assert np.all((points > low - 0.1) & (points < high + 0.1), axis=1).mean() > 0.99
    # Every map point below the ceiling cut falls inside the BEV drawn from the metadata.
    below = points[points[:, 2] <= meta['max_height_m']]
    col = (below[:, 0] - meta['origin_xy_m'][0]) / meta['metres_per_pixel']
    row = meta['height_px'] - (below[:, 1] - meta['origin_xy_m'][1]) / meta['metres_per_pixel']
    assert np.all((col >= 0) & (col <= meta['width_px']) & (row >= 0) & (row <= meta['height_px']))
    timing = json.loads((out / 'timing.json').read_text())
    assert timing['frames'] == 24 and timing['integrate_ms_median'] > 0


def test_a_folder_that_is_not_a_sequence_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / 'nowhere'), str(tmp_path / 'out')]) == 2
    assert 'nowhere' in capsys.readouterr().err


def test_bad_stride_is_a_usage_error(scene, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(scene), str(tmp_path / 'out'), '--stride', '0'])
    assert exit_info.value.code == 2
    assert '--stride' in capsys.readouterr().err


def test_writes_instances_marked_bev_and_keyframes(scene, tmp_path, capsys):
    out = tmp_path / 'out'
    assert main([str(scene), str(out), '--keyframes', '4', '--update-every', '8', '--quiet']) == 0
    printed = capsys.readouterr().out
    assert 'instances:' in printed and 'keyframes: 4' in printed
    record = json.loads((out / 'instances.json').read_text())
    assert record['frame_id'] == json.loads((out / 'bev_meta.json').read_text())['frame_id']
    assert record['instances'], 'the room has objects'
    for instance in record['instances']:
        assert set(instance) >= {'id', 'label', 'confidence', 'center', 'size', 'yaw', 'num_points'}
        assert len(instance['center']) == len(instance['size']) == 3 and instance['label'] == ''
        assert -np.pi / 4 - 1e-6 <= instance['yaw'] <= np.pi / 4 + 1e-6
    ids = {instance['id'] for instance in record['instances']}
    bev, marked = cv2.imread(str(out / 'bev.png')), cv2.imread(str(out / 'bev_marked.png'))
    assert marked.shape == bev.shape and np.any(marked != bev)
    frames = json.loads((out / 'keyframes.json').read_text())['keyframes']
    assert len(frames) == 4 and len(list((out / 'keyframes').glob('*.png'))) == 4
    for frame in frames:
        image = cv2.imread(str(out / frame['file']))
        assert image.shape == (240, 320, 3)
        assert 0 <= frame['frame_index'] < 24 and np.array(frame['T_map_camera']).shape == (4, 4)
        for marker in frame['markers']:
            assert marker['id'] in ids and 0 <= marker['pixel'][0] < 320 and 0 <= marker['pixel'][1] < 240
    assert any(frame['markers'] for frame in frames)


def test_a_detector_that_does_not_load_exits_2(scene, tmp_path, capsys):
    assert (
        main(
            [
                str(scene),
                str(tmp_path / 'out'),
                '--detector',
                'transformers',
                '--detector-model',
                str(tmp_path / 'missing'),
                '--quiet',
            ]
        )
        == 2
    )
    assert 'detector_model' in capsys.readouterr().err


def test_progress_says_when_stderr_is_not_a_terminal(scene, tmp_path, capsys):
    assert main([str(scene), str(tmp_path / 'out'), '--voxel-size', '0.05', '--max-frames', '4']) == 0
    err = capsys.readouterr().err
    assert 'fusing 4 frames (no progress bar: stderr is not a terminal)' in err and '\r' not in err
