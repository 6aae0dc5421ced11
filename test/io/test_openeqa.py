"""OpenEQA episode histories (gpt4scene_ros.io.openeqa): the ScanNet and HM3D variants, written by hand into
``tmp_path`` in the layout of the benchmark's extraction scripts."""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np
import pytest

from gpt4scene_ros.io.open import open_sequence
from gpt4scene_ros.io.openeqa import OpenEqaEpisode
from gpt4scene_ros.io.sequence import FrameError, SequenceError

SCANNET_DEPTH_K = np.array([[577.87, 0.0, 319.5], [0.0, 577.87, 239.5], [0.0, 0.0, 1.0]])
SCANNET_COLOR_K = np.array([[1169.62, 0.0, 646.3], [0.0, 1167.1, 489.9], [0.0, 0.0, 1.0]])
HM3D_SIZE = (192, 108)  # the extraction renders 1920x1080; a tenth keeps the test small
HM3D_K = np.array([[96.0, 0.0, 96.0], [0.0, 96.0, 54.0], [0.0, 0.0, 1.0]])  # 90 degrees horizontal field of view


def matrix4(K):
    matrix = np.eye(4)
    matrix[:3, :3] = K
    return matrix


def turned_about_y(degrees, position):
    """An OpenGL camera turned about the world's y (up) axis: at 0 degrees it looks along world -z."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    T = np.eye(4)
    T[:3, :3] = [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
    T[:3, 3] = position
    return T


def write_episode(root, color_size, depth_size, depth_value, color_K, depth_K, poses):
    root.mkdir(parents=True)
    for k, pose in enumerate(poses):
        color = np.zeros((color_size[1], color_size[0], 3), np.uint8)
        color[:, : color_size[0] // 2] = (0, 0, 255)  # BGR red left, blue right
        color[:, color_size[0] // 2 :] = (255, 0, 0)
        cv2.imwrite(str(root / f'{k:06d}-rgb.png'), color)
        depth = np.full((depth_size[1], depth_size[0]), depth_value, np.uint16)
        depth[:4, :4] = 0
        depth[-4:, -4:] = 65535
        cv2.imwrite(str(root / f'{k:06d}-depth.png'), depth)
        np.savetxt(root / f'{k:06d}.txt', pose, fmt='%.6f')
    np.savetxt(root / 'intrinsic_color.txt', matrix4(color_K), fmt='%.6f')
    np.savetxt(root / 'intrinsic_depth.txt', matrix4(depth_K), fmt='%.6f')
    return root


def scannet_poses():
    return [np.eye(4), turned_about_y(0.0, (1.0, 2.0, 0.5)), turned_about_y(30.0, (0.0, 0.0, 1.0))]


def write_scannet_episode(root):
    """ScanNet variant: 1296x968 colour, 640x480 depth of 1500 mm."""
    return write_episode(root, (1296, 968), (640, 480), 1500, SCANNET_COLOR_K, SCANNET_DEPTH_K, scannet_poses())


HM3D_POSES = [turned_about_y(0.0, (0.0, 1.5, 0.0)), turned_about_y(90.0, (2.0, 1.5, -1.0))]


def write_hm3d_episode(root):
    """HM3D variant: colour and depth of one size and one camera; depth 13107 = 2 m (65535 = 10 m)."""
    return write_episode(root, HM3D_SIZE, HM3D_SIZE, 13107, HM3D_K, HM3D_K, HM3D_POSES)


@pytest.fixture
def scannet_episode(tmp_path):
    return write_scannet_episode(tmp_path / 'scannet-v0' / '002-scannet-scene0709_00')


@pytest.fixture
def hm3d_episode(tmp_path):
    return write_hm3d_episode(tmp_path / 'hm3d-v0' / '000-hm3d-BFRyYbPCCPE')


def test_a_scannet_episode_loads_at_the_depth_size_in_millimetres_with_its_poses(scannet_episode):
    sequence = open_sequence(scannet_episode)
    assert isinstance(sequence, OpenEqaEpisode) and sequence.layout == 'openeqa' and sequence.variant == 'scannet'
    assert len(sequence) == 3 and sequence.timestamp_s(2) == pytest.approx(2 / 30.0)
    np.testing.assert_allclose(sequence.intrinsics.matrix(), SCANNET_DEPTH_K, atol=1e-6)
    assert (sequence.intrinsics.width, sequence.intrinsics.height) == (640, 480)
    for position, pose in enumerate(scannet_poses()):
        frame = sequence.load(position)
        assert frame.index == position and frame.color.shape == (480, 640, 3) and frame.depth.shape == (480, 640)
        np.testing.assert_allclose(frame.T_world_camera, pose, atol=1e-6)  # already optical: unchanged
        depth_m = frame.depth_m
        assert depth_m[0, 0] == 0 and depth_m[240, 320] == pytest.approx(1.5)
        assert depth_m[-1, -1] == pytest.approx(65.535), 'in millimetres 65535 is a depth, not a marker'
    color = frame.color.astype(int)
    assert np.all(np.abs(color[:, :300] - (255, 0, 0)) <= 8) and np.all(np.abs(color[:, 340:] - (0, 0, 255)) <= 8)


def test_an_hm3d_episode_has_depth_in_tenths_of_the_range_and_optical_poses(hm3d_episode):
    sequence = open_sequence(hm3d_episode)
    assert sequence.variant == 'hm3d' and sequence.depth_scale_per_m == 6553.5
    frame = sequence.load(0)
    assert frame.color.shape == (108, 192, 3)
    depth_m = frame.depth_m
    assert depth_m[50, 90] == pytest.approx(2.0, abs=1e-4)
    assert depth_m[0, 0] == 0 and depth_m[-1, -1] == 0, '65535 (the 10 m limit) is invalid'

    # The OpenGL camera looks along world -z with y up: optically z (forward) is world -z, y (down) world -y.
    R = frame.T_world_camera[:3, :3]
    np.testing.assert_allclose(R[:, 2], (0.0, 0.0, -1.0), atol=1e-6)
    np.testing.assert_allclose(R[:, 1], (0.0, -1.0, 0.0), atol=1e-6)
    np.testing.assert_allclose(R[:, 0], (1.0, 0.0, 0.0), atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-9)

    # Pixels back-projected from the optical pose land in front of the camera and above/below where they should.
    K = sequence.intrinsics
    for position, expected in ((0, [(0.0, 1.5, -2.0), (0.0, 1.5 + 54 / 96 * 2, -2.0)]), (1, [(0.0, 1.5, -1.0)])):
        T = sequence.load(position).T_world_camera
        pixels = [(K.cx, K.cy), (K.cx, 0.0)][: len(expected)]
        for (u, v), point in zip(pixels, expected):
            camera = np.array([(u - K.cx) / K.fx * 2.0, (v - K.cy) / K.fy * 2.0, 2.0, 1.0])
            np.testing.assert_allclose((T @ camera)[:3], point, atol=1e-5)


def test_the_variant_comes_from_the_argument_the_names_or_else_the_intrinsics(tmp_path, caplog):
    hm3d_named_plainly = write_hm3d_episode(tmp_path / 'episodes' / 'ep-000')
    scannet_named_plainly = write_scannet_episode(tmp_path / 'episodes' / 'ep-001')
    with caplog.at_level(logging.WARNING, logger='gpt4scene_ros.io.openeqa'):
        assert OpenEqaEpisode(hm3d_named_plainly).variant == 'hm3d'
        assert OpenEqaEpisode(scannet_named_plainly).variant == 'scannet'
    assert sum('names no variant' in r.getMessage() for r in caplog.records) == 2
    assert OpenEqaEpisode(hm3d_named_plainly, variant='scannet').depth_scale_per_m == 1000.0
    assert OpenEqaEpisode(tmp_path / 'episodes' / 'ep-001', variant='hm3d').variant == 'hm3d'
    with pytest.raises(ValueError, match="variant must be one of \\('scannet', 'hm3d'\\)"):
        OpenEqaEpisode(hm3d_named_plainly, variant='matterport')


def test_a_lost_tracking_pose_raises_frame_error(scannet_episode):
    (scannet_episode / '000001.txt').write_text('-inf -inf -inf -inf\n' * 4)
    (scannet_episode / '000002-rgb.png').unlink()
    sequence = open_sequence(scannet_episode)
    with pytest.raises(FrameError, match=r'000001\.txt: pose is -inf/NaN'):
        sequence.load(1)
    with pytest.raises(FrameError, match=r'000002-rgb\.png: colour image is missing'):
        sequence.load(2)
    assert sequence.load(0).index == 0


@pytest.mark.parametrize(
    ('damage', 'message'),
    [
        (lambda root: (root / 'intrinsic_depth.txt').unlink(), r'intrinsic_depth\.txt: camera intrinsics file is miss'),
        (lambda root: (root / 'intrinsic_depth.txt').write_text('1 0 0\n'), r'intrinsic_depth\.txt: malformed'),
        (lambda root: [p.unlink() for p in root.glob('*-depth.png')], r'no frames with depth.*RGB-only'),
    ],
    ids=['no-intrinsics', 'bad-intrinsics', 'rgb-only'],
)
def test_an_unplayable_episode_raises_sequence_error_naming_the_file(scannet_episode, damage, message):
    damage(scannet_episode)
    with pytest.raises(SequenceError, match=message):
        open_sequence(scannet_episode)
