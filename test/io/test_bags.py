"""rosbag2 input (MCAP and sqlite3) through rosbags: real bags written from generated scenes (and the 7-Scenes
kitchen when ../shared/data is there), read back as sequences and fused; broken bags get clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import KITCHEN

from gpt4scene_ros.common.settings.mapping import MappingConfig
from gpt4scene_ros.io.bags import BAG_EPOCH_S, BagSequence, BagTopics, is_bag, write_bag
from gpt4scene_ros.io.open import open_sequence
from gpt4scene_ros.io.sequence import SequenceError
from gpt4scene_ros.objects.offline import process_sequence
from gpt4scene_ros.sim.scene import SyntheticSceneConfig
from gpt4scene_ros.sim.writer import write_sequence
from gpt4scene_ros.tools.process import main as process_main


@pytest.fixture(scope='module')
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp('bag_scene') / 'scene'
    write_sequence(SyntheticSceneConfig(seed=5, num_frames=24).with_resolution(160, 120), folder)
    return folder


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_a_written_bag_reads_back_as_the_same_frames(scene, tmp_path, storage):
    folder = open_sequence(scene)
    assert write_bag(folder, tmp_path / 'bag', storage=storage) == len(folder)
    bag = open_sequence(tmp_path / 'bag')
    assert isinstance(bag, BagSequence) and bag.layout == 'rosbag2' and len(bag) == len(folder)
    assert bag.intrinsics == folder.intrinsics
    for i in (0, len(folder) // 2, len(folder) - 1):
        expected, got = folder.load(i), bag.load(i)
        np.testing.assert_array_equal(got.color, expected.color)
        np.testing.assert_allclose(got.depth_m, expected.depth_m, atol=0.0006)  # 16UC1 millimetres
        np.testing.assert_allclose(got.T_world_camera, expected.T_world_camera, atol=1e-9)
        assert got.timestamp_s == pytest.approx(BAG_EPOCH_S + folder.timestamp_s(i), abs=1e-6)
    bag.close()


def test_the_bag_file_itself_and_renamed_topics_open(scene, tmp_path):
    topics = BagTopics(color='/cam/rgb', depth='cam/aligned_depth', camera_info='/cam/info', odometry='/robot/odom')
    write_bag(open_sequence(scene), tmp_path / 'bag', topics=topics, max_frames=5)
    [mcap] = (tmp_path / 'bag').glob('*.mcap')
    assert is_bag(mcap) and is_bag(tmp_path / 'bag') and not is_bag(scene)
    assert len(open_sequence(mcap, bag_topics=topics)) == 5
    with pytest.raises(SequenceError) as error:
        open_sequence(tmp_path / 'bag')  # the default topic names are not in this bag
    message = str(error.value)
    assert 'no color topic /camera/color/image_raw' in message and '/cam/rgb (sensor_msgs/msg/Image)' in message


def test_a_topic_of_the_wrong_type_is_named(scene, tmp_path):
    # The odometry written on the colour topic name: the bag opens, its colour topic has the wrong type.
    write_bag(
        open_sequence(scene),
        tmp_path / 'bag',
        max_frames=3,
        topics=BagTopics(color='/rgb', odometry='/camera/color/image_raw'),
    )
    with pytest.raises(SequenceError, match='topic /camera/color/image_raw has message type nav_msgs/msg/Odometry'):
        open_sequence(tmp_path / 'bag', bag_topics=BagTopics(depth='/camera/depth/image_raw', odometry='/rgb'))


def test_an_unknown_message_type_is_a_clear_error(tmp_path):
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    with Writer(tmp_path / 'bag', version=8) as writer:
        connection = writer.add_connection('/camera/color/image_raw', 'std_msgs/msg/String', typestore=store)
        writer.write(
            connection, 1, store.serialize_cdr(store.types['std_msgs/msg/String'](data='hi'), 'std_msgs/msg/String')
        )
    with pytest.raises(SequenceError, match='has message type std_msgs/msg/String'):
        open_sequence(tmp_path / 'bag')


def test_a_truncated_bag_missing_bag_and_empty_folder_are_clear_errors(scene, tmp_path):
    write_bag(open_sequence(scene), tmp_path / 'bag', max_frames=8)
    [mcap] = (tmp_path / 'bag').glob('*.mcap')
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2])
    with pytest.raises(SequenceError, match='bag') as error:
        sequence = open_sequence(tmp_path / 'bag')
        for i in range(len(sequence)):  # an index that survived truncation: frames past the cut fail to load
            sequence.load(i)
    assert str(tmp_path / 'bag') in str(error.value)
    with pytest.raises(SequenceError, match='does not exist'):
        open_sequence(tmp_path / 'no_such.mcap')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(SequenceError, match='nor a rosbag2 bag'):
        open_sequence(tmp_path / 'empty')


def test_a_bag_without_depth_messages_says_so(scene, tmp_path):
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    write_bag(open_sequence(scene), tmp_path / 'full', max_frames=2)
    store = get_typestore(Stores.ROS2_HUMBLE)
    # Copy every topic but depth, and add a depth connection with no messages.
    from rosbags.highlevel import AnyReader

    with AnyReader([tmp_path / 'full']) as reader, Writer(tmp_path / 'bag', version=8) as writer:
        out = {c.topic: writer.add_connection(c.topic, c.msgtype, typestore=store) for c in reader.connections}
        for connection, time_ns, raw in reader.messages():
            if connection.topic != '/camera/depth/image_raw':
                writer.write(out[connection.topic], time_ns, raw)
    with pytest.raises(SequenceError, match='topic /camera/depth/image_raw holds no messages'):
        open_sequence(tmp_path / 'bag')


def test_gpt4scene_process_fuses_a_bag_and_refuses_a_wrong_topic(scene, tmp_path, capsys):
    write_bag(open_sequence(scene), tmp_path / 'bag', storage='sqlite3')
    summary = process_sequence(tmp_path / 'bag', tmp_path / 'out', MappingConfig(voxel_size_m=0.04), progress=False)
    assert summary['integrated'] == 24 and summary['instances'] >= 2, summary
    assert (tmp_path / 'out' / 'bev.png').stat().st_size > 1000
    code = process_main([str(tmp_path / 'bag'), str(tmp_path / 'out2'), '--odometry-topic', '/tf', '--quiet'])
    assert code == 2 and 'no odometry topic /tf in the bag' in capsys.readouterr().err


def test_gpt4scene_process_plays_the_frames_again_for_a_revisit_with_later_stamps(scene, tmp_path):
    updates = []
    config = MappingConfig(voxel_size_m=0.04)
    summary = process_sequence(
        scene,
        tmp_path / 'out',
        config,
        progress=False,
        update_every=8,
        passes=2,
        on_update=lambda snapshot, index, _: updates.append((index, snapshot.stamp_s, len(snapshot.instances))),
    )
    assert summary['frames'] == summary['integrated'] == 48
    indices, stamps, counts = zip(*updates)
    assert indices == (7, 15, 23, 7, 15, 23), 'the second pass plays the same frames'
    assert all(b > a for a, b in zip(stamps, stamps[1:])), f'stamps go on: {stamps}'
    assert counts[-1] >= 2
    with pytest.raises(ValueError, match='passes must be at least 1'):
        process_sequence(scene, tmp_path / 'out', config, progress=False, passes=0)


@pytest.mark.skipif(not (KITCHEN / 'camera-intrinsics.txt').exists(), reason='real 7-Scenes data not found')
def test_the_real_kitchen_recorded_as_a_bag_fuses_like_the_folder(tmp_path):
    assert write_bag(open_sequence(KITCHEN), tmp_path / 'kitchen', max_frames=120) == 120
    config = MappingConfig(voxel_size_m=0.04)
    from_bag = process_sequence(tmp_path / 'kitchen', tmp_path / 'bag_out', config, progress=False, max_frames=120)
    from_folder = process_sequence(KITCHEN, tmp_path / 'folder_out', config, progress=False, max_frames=120)
    assert from_bag['integrated'] == from_folder['integrated'] == 120
    assert from_bag['map_blocks'] == pytest.approx(from_folder['map_blocks'], rel=0.02), (from_bag, from_folder)


def test_make_scene_records_the_generated_room_as_a_bag(tmp_path, capsys):
    from gpt4scene_ros.tools.make_scene import main as make_scene

    args = [str(tmp_path / 'scene'), '--frames', '3', '--width', '80', '--height', '60', '--bag', str(tmp_path / 'bag')]
    assert make_scene(args) == 0
    assert 'recorded 3 frames as a rosbag2 bag (mcap)' in capsys.readouterr().out
    assert len(open_sequence(tmp_path / 'bag')) == 3
    assert make_scene([str(tmp_path / 'scene2'), '--frames', '3', '--bag', str(tmp_path / 'bag')]) == 2
    assert 'already exists' in capsys.readouterr().err and not (tmp_path / 'scene2').exists()
