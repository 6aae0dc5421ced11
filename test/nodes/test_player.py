"""The player node over real DDS: real 7-Scenes frames in, topics out; bad inputs."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import call_service, wait_for
from geometry_msgs.msg import TransformStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, Image
from std_srvs.srv import Trigger

from gpt4scene_ros.common.transforms import R_BASE_OPTICAL, make_transform
from gpt4scene_ros.io.bags import BagTopics
from gpt4scene_ros.io.messages import image_array
from gpt4scene_ros.ros.conversions.geometry import pose_to_transform, transform_from_msg
from gpt4scene_ros.ros.conversions.time import time_from_msg
from gpt4scene_ros.ros.qos import LATCHED, reliable
from gpt4scene_ros.sim.scene import SyntheticSceneConfig
from gpt4scene_ros.sim.writer import write_sequence

TOPICS = {
    'color': ('camera/color/image_raw', Image),
    'depth': ('camera/depth/image_raw', Image),
    'info': ('camera/color/camera_info', CameraInfo),
    'odom': ('odom', Odometry),
}


class Recorder:
    """Subscribes to the player's topics and keeps every message."""

    def __init__(self, node):
        self.lock = threading.Lock()
        self.messages = {key: [] for key in TOPICS}
        qos = reliable(200)
        for key, (topic, msg_type) in TOPICS.items():
            node.create_subscription(msg_type, topic, lambda msg, key=key: self._store(key, msg), qos)
        self.alignment = []
        node.create_subscription(TransformStamped, 'player/dataset_alignment', self.alignment.append, LATCHED)

    def _store(self, key, msg):
        with self.lock:
            self.messages[key].append(msg)

    def count(self, key='color') -> int:
        with self.lock:
            return len(self.messages[key])

    def all_counts_at_least(self, n: int) -> bool:
        with self.lock:
            return all(len(v) >= n for v in self.messages.values())


@pytest.fixture(scope='module')
def small_scene(tmp_path_factory):
    """Four synthetic 160x120 frames in the 7-Scenes layout (no real data needed)."""
    folder = tmp_path_factory.mktemp('synthetic') / 'scene'
    write_sequence(SyntheticSceneConfig(seed=1, num_frames=4).with_resolution(160, 120), folder)
    return folder


@pytest.fixture
def sequence_copy(small_scene, tmp_path):
    """A private copy of ``small_scene`` that a test may break."""
    return Path(shutil.copytree(small_scene, tmp_path / 'seq'))


def test_plays_50_real_frames_with_matching_stamps_and_depth(kitchen_dir, ros_node, start_node):
    recorder = Recorder(ros_node)
    player = start_node(
        'player',
        {
            'data_dir': str(kitchen_dir),
            'max_frames': 50,
            'playback_mode': 'as_fast_as_possible',
            'wait_for_subscribers': 1,
        },
    )
    assert player.wait(120) == 0, player.output
    wait_for(lambda: recorder.all_counts_at_least(50), 20, '50 messages on every topic')
    assert {k: len(v) for k, v in recorder.messages.items()} == {k: 50 for k in TOPICS}

    stamps = {key: [time_from_msg(m.header.stamp) for m in msgs] for key, msgs in recorder.messages.items()}
    for key in ('depth', 'info', 'odom'):
        assert stamps[key] == stamps['color'], f'{key} stamps differ from colour stamps'
    np.testing.assert_allclose(np.diff(stamps['color']), 1.0 / 30.0, atol=1e-6)  # 7-Scenes: 30 Hz

    wait_for(lambda: recorder.alignment, 10, 'the latched dataset alignment')
    T_odom_world = transform_from_msg(recorder.alignment[0].transform)
    K = np.array(recorder.messages['info'][0].k).reshape(3, 3)
    np.testing.assert_allclose(K, [[585, 0, 320], [0, 585, 240], [0, 0, 1]])
    for i in (0, 17, 49):
        depth_msg = recorder.messages['depth'][i]
        assert depth_msg.encoding == '16UC1' and depth_msg.header.frame_id == 'camera_color_optical_frame'
        png = cv2.imread(str(kitchen_dir / f'frame-{i:06d}.depth.png'), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(image_array(depth_msg), png)
        jpg = cv2.imread(str(kitchen_dir / f'frame-{i:06d}.color.jpg'))[:, :, ::-1]
        color_msg = recorder.messages['color'][i]
        assert color_msg.encoding == 'rgb8'
        np.testing.assert_array_equal(image_array(color_msg), jpg)
        T_world_camera = np.loadtxt(kitchen_dir / f'frame-{i:06d}.pose.txt')
        T_odom_base = pose_to_transform(recorder.messages['odom'][i].pose.pose)
        T_odom_optical = T_odom_base @ make_transform(R_BASE_OPTICAL, np.zeros(3))
        # 7-Scenes rotations are orthonormal to ~5e-5 only; a quaternion is exactly orthonormal.
        np.testing.assert_allclose(T_odom_optical, T_odom_world @ T_world_camera, atol=2e-4)
    # The odometry frame is gravity-aligned: the floor/table normal of the data points along +z.
    up = T_odom_world[:3, :3] @ -np.array([0.0, 0.89, 0.46]) / np.linalg.norm([0.0, 0.89, 0.46])
    assert up[2] > np.cos(np.radians(5))


def test_stepped_mode_publishes_one_frame_per_call_and_32fc1_depth(small_scene, ros_node, start_node):
    recorder = Recorder(ros_node)
    start_node(
        'player',
        {
            'data_dir': str(small_scene),
            'max_frames': 3,
            'playback_mode': 'stepped',
            'depth_encoding': '32FC1',
            'gravity_alignment': 'none',
        },
    )
    client = ros_node.create_client(Trigger, 'player/step')
    for expected in (1, 2, 3):
        response = call_service(ros_node, client, Trigger.Request())
        assert response.success, response.message
        wait_for(lambda: recorder.all_counts_at_least(expected), 10, f'frame {expected}')
        assert recorder.count() == expected
    depth = image_array(recorder.messages['depth'][2])
    png = cv2.imread(str(small_scene / 'frame-000002.depth.png'), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.float32
    np.testing.assert_allclose(depth[png > 0], png[png > 0] / 1000.0, rtol=1e-6)
    assert np.all(np.isnan(depth[png == 0]))


def test_loop_keeps_stamps_increasing(sequence_copy, ros_node, start_node):
    data = sequence_copy
    for suffix in ('color.jpg', 'depth.png', 'pose.txt', 'instance.png'):
        (data / f'frame-000003.{suffix}').unlink()  # three frames per loop
    recorder = Recorder(ros_node)
    start_node(
        'player',
        {'data_dir': str(data), 'loop': True, 'rate_hz': 60.0, 'gravity_alignment': 'none', 'wait_for_subscribers': 1},
    )
    wait_for(lambda: recorder.all_counts_at_least(8), 20, '8 frames over more than two loops')
    stamps = [time_from_msg(m.header.stamp) for m in recorder.messages['color'][:8]]
    assert np.all(np.diff(stamps) > 0), stamps
    np.testing.assert_allclose(np.diff(stamps), 1.0 / 60.0, atol=1e-6)


@pytest.mark.parametrize(
    'problem',
    ['missing_folder', 'file_not_folder', 'empty_folder', 'malformed_intrinsics', 'empty_data_dir', 'bad_parameter'],
)
def test_unplayable_input_exits_with_code_2_and_a_clear_error(problem, sequence_copy, tmp_path, start_node):
    params = {'gravity_alignment': 'none'}
    if problem == 'missing_folder':
        params['data_dir'] = str(tmp_path / 'nowhere')
    elif problem == 'file_not_folder':
        (tmp_path / 'file.txt').write_text('x')
        params['data_dir'] = str(tmp_path / 'file.txt')
    elif problem == 'empty_folder':
        (tmp_path / 'empty').mkdir()
        params['data_dir'] = str(tmp_path / 'empty')
    elif problem == 'malformed_intrinsics':
        (sequence_copy / 'camera-intrinsics.txt').write_text('585 0 320\n0 five 240\n')
        params['data_dir'] = str(sequence_copy)
    elif problem == 'empty_data_dir':
        params['data_dir'] = ''
    elif problem == 'bad_parameter':
        params['data_dir'] = str(sequence_copy)
        params['playback_mode'] = 'sometimes'
    player = start_node('player', params)
    assert player.wait(30) == 2, player.output
    assert 'FATAL' in player.output
    expected = {
        'missing_folder': 'nowhere',
        'file_not_folder': 'file.txt',
        'empty_folder': 'empty',
        'malformed_intrinsics': 'intrinsics',
        'empty_data_dir': 'data_dir',
        'bad_parameter': 'playback_mode',
    }[problem]
    assert expected in player.output


@pytest.mark.parametrize('problem', ['missing_color', 'garbage_depth', 'nan_pose', 'non_rigid_pose'])
def test_bad_frame_is_skipped_with_a_warning(problem, sequence_copy, ros_node, start_node):
    data = sequence_copy
    broken = 'frame-000002'
    if problem == 'missing_color':
        (data / f'{broken}.color.jpg').unlink()
    elif problem == 'garbage_depth':
        (data / f'{broken}.depth.png').write_bytes(b'not a png at all')
    elif problem == 'nan_pose':
        pose = np.loadtxt(data / f'{broken}.pose.txt')
        pose[0, 3] = np.nan
        np.savetxt(data / f'{broken}.pose.txt', pose)
    elif problem == 'non_rigid_pose':
        pose = np.loadtxt(data / f'{broken}.pose.txt')
        pose[:3, :3] *= 1.5
        np.savetxt(data / f'{broken}.pose.txt', pose)
    recorder = Recorder(ros_node)
    player = start_node(
        'player',
        {
            'data_dir': str(data),
            'playback_mode': 'as_fast_as_possible',
            'gravity_alignment': 'none',
            'wait_for_subscribers': 1,
        },
    )
    assert player.wait(60) == 0, player.output
    wait_for(lambda: recorder.all_counts_at_least(3), 10, 'the three good frames')
    assert 'WARN' in player.output and broken in player.output
    assert '3 frames published, 1 skipped' in player.output
    assert recorder.count() == 3


def test_a_bag_plays_with_its_recorded_stamps_and_clock_and_fuses(tmp_path, ros_node, start_node):
    from rosgraph_msgs.msg import Clock
    from test_mapping_node import MapOutputs

    from gpt4scene_ros.io.bags import BAG_EPOCH_S, write_bag
    from gpt4scene_ros.io.open import open_sequence

    scene = tmp_path / 'scene'
    write_sequence(SyntheticSceneConfig(seed=2, num_frames=20).with_resolution(160, 120), scene)
    write_bag(
        open_sequence(scene),
        tmp_path / 'bag',
        storage='mcap',
        topics=BagTopics(
            color='/rs/color/image_raw',
            depth='/rs/aligned_depth_to_color/image_raw',
            camera_info='/rs/color/camera_info',
            odometry='/robot/odom',
        ),
    )
    recorder = Recorder(ros_node)
    clock = []
    ros_node.create_subscription(Clock, '/clock', clock.append, 50)
    outputs = MapOutputs(ros_node)
    start_node('mapping_node', {'input_qos': 'reliable', 'frame_queue_size': 100, 'instances_enabled': False})
    player = start_node(
        'player',
        {
            'data_dir': str(tmp_path / 'bag'),
            'playback_mode': 'as_fast_as_possible',
            'wait_for_subscribers': 2,
            'stamps': 'recorded',
            'publish_clock': True,
            'color_topic': '/rs/color/image_raw',
            'depth_topic': '/rs/aligned_depth_to_color/image_raw',
            'camera_info_topic': '/rs/color/camera_info',
            'odometry_topic': '/robot/odom',
        },
    )
    assert player.wait(120) == 0, player.output
    assert 'rosbag2 sequence' in player.output
    wait_for(lambda: recorder.all_counts_at_least(20), 20, '20 messages on every topic')
    stamps = [time_from_msg(m.header.stamp) for m in recorder.messages['color']]
    np.testing.assert_allclose(stamps, BAG_EPOCH_S + np.arange(20) / 30.0, atol=1e-6)  # the recorded stamps
    wait_for(lambda: len(clock) >= 20, 10, '/clock at every frame')
    assert [time_from_msg(c.clock) for c in clock[-20:]] == pytest.approx(stamps, abs=1e-6)
    wait_for(
        lambda: outputs.counter('frames_integrated') == 20,
        60,
        'every frame of the bag integrated',
        details=outputs.counters,
    )


def test_a_missing_bag_or_a_bag_without_the_topic_stops_the_player_with_exit_2(tmp_path, start_node, small_scene):
    from gpt4scene_ros.io.bags import write_bag
    from gpt4scene_ros.io.open import open_sequence

    missing = start_node('player', {'data_dir': str(tmp_path / 'nothing.mcap')})
    assert missing.wait(30) == 2 and 'does not exist' in missing.output
    write_bag(open_sequence(small_scene), tmp_path / 'bag')
    wrong = start_node('player', {'data_dir': str(tmp_path / 'bag'), 'color_topic': '/camera/camera/color/image_raw'})
    assert wrong.wait(30) == 2, wrong.output
    assert 'no color topic /camera/camera/color/image_raw' in wrong.output and '/camera/color/image_raw' in wrong.output
