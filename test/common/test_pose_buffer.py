"""PoseBuffer: interpolation against hand-computed poses, lookup failures, resets and pruning."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpt4scene_ros.common.pose_buffer import BACKWARDS_TOLERANCE_S, PoseBuffer, PoseLookupError
from gpt4scene_ros.common.transforms import make_transform


def yaw(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def pose(angle_rad: float = 0.0, translation=(0.0, 0.0, 0.0)) -> np.ndarray:
    return make_transform(yaw(angle_rad), translation)


def test_half_way_translation_and_rotation():
    buffer = PoseBuffer(max_gap_s=1.0)
    assert buffer.add(100.0, pose(0.0, (0.0, 0.0, 0.0))) == 'added'
    assert buffer.add(100.2, pose(math.pi / 2, (2.0, -4.0, 1.0))) == 'added'
    T = buffer.lookup(100.1)
    np.testing.assert_allclose(T[:3, 3], [1.0, -2.0, 0.5], atol=1e-9)
    np.testing.assert_allclose(T[:3, :3], yaw(math.pi / 4), atol=1e-9)  # 90 degrees half-way is 45
    np.testing.assert_allclose(T[3], [0.0, 0.0, 0.0, 1.0])


def test_quarter_way_on_realistic_epoch_stamps():
    buffer = PoseBuffer()
    start = 1_700_000_000.0
    buffer.add(start, pose(0.0, (0.0, 0.0, 0.0)))
    buffer.add(start + 0.2, pose(math.radians(40.0), (4.0, 0.0, 0.0)))
    T = buffer.lookup(start + 0.05)
    # float seconds near 1.7e9 resolve about 0.24 microseconds: alpha is exact to a few 1e-7
    np.testing.assert_allclose(T[:3, 3], [1.0, 0.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(T[:3, :3], yaw(math.radians(10.0)), atol=1e-5)


def test_rotation_takes_the_short_way_across_180_degrees():
    buffer = PoseBuffer()
    buffer.add(0.0, pose(math.radians(170.0)))
    buffer.add(0.1, pose(math.radians(-170.0)))
    np.testing.assert_allclose(buffer.lookup(0.05)[:3, :3], yaw(math.pi), atol=1e-9)


def test_stamps_equal_to_buffered_ones_return_them_exactly():
    buffer = PoseBuffer()
    poses = {0.0: pose(0.1, (1.0, 2.0, 3.0)), 0.1: pose(0.7, (1.5, 2.0, 3.0)), 0.2: pose(-0.3, (0.0, 0.0, 1.0))}
    for stamp, T in poses.items():
        buffer.add(stamp, T)
    for stamp, T in poses.items():
        np.testing.assert_array_equal(buffer.lookup(stamp), T)
    returned = buffer.lookup(0.1)
    returned[0, 3] = 99.0  # a copy: the buffer is not changed through it
    np.testing.assert_array_equal(buffer.lookup(0.1), poses[0.1])


def test_a_duplicate_stamp_replaces_the_pose():
    buffer = PoseBuffer()
    buffer.add(1.0, pose(0.0, (0.0, 0.0, 0.0)))
    assert buffer.add(1.0, pose(0.0, (5.0, 0.0, 0.0))) == 'added'
    assert len(buffer) == 1
    np.testing.assert_array_equal(buffer.lookup(1.0)[:3, 3], [5.0, 0.0, 0.0])


def test_slightly_out_of_order_poses_are_inserted_in_place():
    buffer = PoseBuffer()
    buffer.add(1.0, pose(0.0, (0.0, 0.0, 0.0)))
    buffer.add(1.0008, pose(0.0, (8.0, 0.0, 0.0)))
    assert buffer.add(1.0004, pose(0.0, (4.0, 0.0, 0.0))) == 'added'  # within BACKWARDS_TOLERANCE_S
    assert len(buffer) == 3 and buffer.newest_stamp_s == 1.0008
    np.testing.assert_allclose(buffer.lookup(1.0002)[:3, 3], [2.0, 0.0, 0.0], atol=1e-9)


@pytest.mark.parametrize('stamp, reason', [(0.95, 'before_buffer'), (1.65, 'after_buffer'), (1.4, 'gap')])
def test_lookup_failures_name_their_reason(stamp, reason):
    buffer = PoseBuffer(max_gap_s=0.25)
    for t in (1.0, 1.1, 1.2, 1.6):  # odometry drops out between 1.2 and 1.6 s
        buffer.add(t, pose())
    with pytest.raises(PoseLookupError) as error:
        buffer.lookup(stamp)
    assert error.value.reason == reason
    assert isinstance(error.value, LookupError) and f'{stamp:.6f}' in str(error.value)


def test_lookup_in_an_empty_buffer():
    with pytest.raises(PoseLookupError) as error:
        PoseBuffer().lookup(3.0)
    assert error.value.reason == 'empty' and 'no pose' in str(error.value)


def test_gap_of_exactly_max_gap_is_interpolated():
    buffer = PoseBuffer(max_gap_s=0.5)
    buffer.add(1.0, pose(0.0, (0.0, 0.0, 0.0)))
    buffer.add(1.5, pose(0.0, (1.0, 0.0, 0.0)))
    np.testing.assert_allclose(buffer.lookup(1.25)[:3, 3], [0.5, 0.0, 0.0])


def test_after_buffer_until_a_newer_pose_arrives():
    buffer = PoseBuffer()
    buffer.add(2.0, pose())
    with pytest.raises(PoseLookupError) as error:
        buffer.lookup(2.0 + 1e-6)  # max_extrapolation_s defaults to 0: even a microsecond is too new
    assert error.value.reason == 'after_buffer'
    buffer.add(2.1, pose(0.0, (1.0, 0.0, 0.0)))
    np.testing.assert_allclose(buffer.lookup(2.05)[:3, 3], [0.5, 0.0, 0.0], atol=1e-9)


def test_max_extrapolation_holds_the_newest_pose():
    buffer = PoseBuffer(max_extrapolation_s=0.05)
    buffer.add(2.0, pose(0.2, (1.0, 2.0, 3.0)))
    np.testing.assert_array_equal(buffer.lookup(2.04), pose(0.2, (1.0, 2.0, 3.0)))
    with pytest.raises(PoseLookupError) as error:
        buffer.lookup(2.06)
    assert error.value.reason == 'after_buffer'


def test_time_jumping_backwards_resets_the_buffer():
    buffer = PoseBuffer()
    for t in (10.0, 10.1, 10.2):
        buffer.add(t, pose(0.0, (t, 0.0, 0.0)))
    assert buffer.add(10.2 - 2 * BACKWARDS_TOLERANCE_S, pose()) == 'reset'
    assert len(buffer) == 1 and buffer.newest_stamp_s == pytest.approx(10.198)
    assert buffer.add(0.0, pose(0.0, (7.0, 0.0, 0.0))) == 'reset'  # a bag loop starting again
    assert len(buffer) == 1 and buffer.newest_stamp_s == 0.0
    np.testing.assert_array_equal(buffer.lookup(0.0)[:3, 3], [7.0, 0.0, 0.0])
    with pytest.raises(PoseLookupError):
        buffer.lookup(10.1)


@pytest.mark.parametrize(
    'bad, words',
    [
        (np.full((4, 4), np.nan), 'NaN'),
        (make_transform(np.diag([2.0, 1.0, 1.0]), (0.0, 0.0, 0.0)), 'not rigid'),
        (make_transform(np.diag([1.0, 1.0, -1.0]), (0.0, 0.0, 0.0)), 'not rigid'),  # a reflection
        (make_transform(np.eye(3), (0.0, np.inf, 0.0)), 'NaN or infinite'),
        (np.eye(3), '4x4'),
    ],
)
def test_invalid_poses_are_rejected_and_leave_the_buffer_unchanged(bad, words):
    buffer = PoseBuffer()
    buffer.add(1.0, pose())
    with pytest.raises(ValueError, match=words):
        buffer.add(1.1, bad)
    assert len(buffer) == 1 and buffer.newest_stamp_s == 1.0


@pytest.mark.parametrize('stamp', [float('nan'), float('inf'), None, '1.0'])
def test_invalid_stamps_are_rejected(stamp):
    with pytest.raises(ValueError, match='stamp'):
        PoseBuffer().add(stamp, pose())
    with pytest.raises(ValueError, match='stamp'):
        PoseBuffer().lookup(stamp)


def test_poses_older_than_max_age_are_pruned():
    buffer = PoseBuffer(max_age_s=1.0)
    for i in range(31):  # 0.0 ... 3.0 s at 10 Hz
        buffer.add(i * 0.1, pose(0.0, (i, 0.0, 0.0)))
    assert len(buffer) == 11  # 2.0 ... 3.0 s
    assert buffer.oldest_stamp_s == pytest.approx(2.0)
    assert buffer.newest_stamp_s == pytest.approx(3.0)
    with pytest.raises(PoseLookupError) as error:
        buffer.lookup(1.95)
    assert error.value.reason == 'before_buffer'
    np.testing.assert_allclose(buffer.lookup(2.05)[:3, 3], [20.5, 0.0, 0.0], atol=1e-9)


def test_clear_and_len():
    buffer = PoseBuffer()
    assert len(buffer) == 0 and buffer.newest_stamp_s is None
    buffer.add(1.0, pose())
    buffer.add(1.1, pose())
    assert len(buffer) == 2
    buffer.clear()
    assert len(buffer) == 0 and buffer.newest_stamp_s is None
    assert buffer.add(0.5, pose()) == 'added'  # nothing to jump back from after a clear


@pytest.mark.parametrize(
    'kwargs, error, words',
    [
        ({'max_age_s': 0.0}, ValueError, 'max_age_s'),
        ({'max_gap_s': -1.0}, ValueError, 'max_gap_s'),
        ({'max_gap_s': float('nan')}, ValueError, 'max_gap_s'),
        ({'max_extrapolation_s': -0.1}, ValueError, 'max_extrapolation_s'),
        ({'max_age_s': '10'}, TypeError, 'max_age_s'),
    ],
)
def test_constructor_arguments_are_checked(kwargs, error, words):
    with pytest.raises(error, match=words):
        PoseBuffer(**kwargs)


def test_lookup_error_reason_is_checked():
    with pytest.raises(ValueError, match='reason'):
        PoseLookupError('late', 'message')
