"""Tests of gpt4scene_ros.io.folders on the real 7-Scenes data and on bad copies of it.

Real data is read from ``<repo>/../shared/data/7scenes-redkitchen``; tests that
need it skip when it is absent. Bad inputs are built from a few copied frames
in ``tmp_path``, never in the repository.
"""

import logging
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from gpt4scene_ros.common.frames import check_rigid_transform
from gpt4scene_ros.common.transforms import matrix_from_quaternion
from gpt4scene_ros.io import folders as datasets  # its logger
from gpt4scene_ros.io.open import open_sequence
from gpt4scene_ros.io.sequence import FrameError, SequenceError

REPO = Path(__file__).resolve().parents[2]
SEVEN_SCENES = REPO.parent / 'shared' / 'data' / '7scenes-redkitchen'
COPIED_FRAMES = 4


@pytest.fixture
def real_root():
    if not (SEVEN_SCENES / 'frame-000000.depth.png').is_file():
        pytest.skip(f'real data not found at {SEVEN_SCENES}')
    return SEVEN_SCENES


@pytest.fixture
def small(real_root, tmp_path):
    """A 7-Scenes folder with the first COPIED_FRAMES real frames and the intrinsics."""
    root = tmp_path / 'redkitchen-copy'
    root.mkdir()
    shutil.copy(real_root / 'camera-intrinsics.txt', root)
    for k in range(COPIED_FRAMES):
        for suffix in ('color.jpg', 'depth.png', 'pose.txt'):
            shutil.copy(real_root / f'frame-{k:06d}.{suffix}', root)
    return root


def read_depth_mm(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def read_rgb(path):
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


# -- real data -------------------------------------------------------------------------------


def test_real_sequence_header(real_root):
    sequence = open_sequence(real_root)
    assert sequence.layout == '7scenes'
    assert len(sequence) == 1000
    k = sequence.intrinsics
    assert (k.width, k.height, k.fx, k.fy, k.cx, k.cy) == (640, 480, 585.0, 585.0, 320.0, 240.0)
    assert sequence.timestamp_s(0) == 0.0
    for i in (1, 10, 999):
        assert sequence.timestamp_s(i) == pytest.approx(i / 30.0, abs=1e-12)


def test_real_sequence_opening_is_lazy(real_root, monkeypatch):
    reads = []
    real_imread = cv2.imread
    monkeypatch.setattr(cv2, 'imread', lambda *args: reads.append(args[0]) or real_imread(*args))
    open_sequence(real_root)
    assert len(reads) <= 1, f'opening read {len(reads)} images'


def test_real_frame_matches_files(real_root):
    sequence = open_sequence(real_root)
    frame = sequence.load(0)
    assert frame.index == 0 and frame.timestamp_s == 0.0
    np.testing.assert_array_equal(frame.T_world_camera, np.loadtxt(real_root / 'frame-000000.pose.txt'))

    raw = read_depth_mm(real_root / 'frame-000000.depth.png')
    assert frame.depth_m.dtype == np.float32 and frame.depth_m.shape == (480, 640)
    valid = raw > 0
    assert valid.any() and (~valid).any()
    np.testing.assert_array_equal(frame.depth_m[valid], raw[valid].astype(np.float32) / np.float32(1000))
    np.testing.assert_allclose(frame.depth_m[valid], raw[valid] / 1000.0, rtol=1e-7)
    assert np.all(frame.depth_m[~valid] == 0)

    assert frame.color.dtype == np.uint8 and frame.color.shape == (480, 640, 3)
    bgr = cv2.imread(str(real_root / 'frame-000000.color.jpg'), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(frame.color, bgr[:, :, ::-1])
    assert not np.array_equal(frame.color, bgr), 'colour must be RGB, not BGR'


def test_real_frame_number_and_time(real_root):
    sequence = open_sequence(real_root, frame_rate_hz=15.0)
    frame = sequence.load(450)
    assert frame.index == 450
    assert frame.timestamp_s == pytest.approx(30.0)
    np.testing.assert_array_equal(frame.T_world_camera, np.loadtxt(real_root / 'frame-000450.pose.txt'))


def test_position_out_of_range(small):
    sequence = open_sequence(small)
    with pytest.raises(IndexError, match='out of range'):
        sequence.load(COPIED_FRAMES)
    with pytest.raises(IndexError):
        sequence.timestamp_s(-1)


@pytest.mark.parametrize('rate', [0, -30.0, math.nan, math.inf])
def test_bad_frame_rate(small, rate):
    with pytest.raises(ValueError, match='frame_rate_hz'):
        open_sequence(small, frame_rate_hz=rate)


# -- folders that cannot be played -----------------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(SequenceError, match='does not exist') as error:
        open_sequence(tmp_path / 'nowhere')
    assert 'nowhere' in str(error.value)


def test_file_instead_of_folder(tmp_path):
    path = tmp_path / 'a-file.txt'
    path.write_text('not a folder')
    with pytest.raises(SequenceError, match='neither a sequence folder nor a rosbag2 bag'):
        open_sequence(path)


def test_empty_folder(tmp_path):
    with pytest.raises(SequenceError, match='neither a TUM RGB-D folder'):
        open_sequence(tmp_path)


def test_folder_without_depth_has_no_frames(small):
    for path in small.glob('*.depth.png'):
        path.unlink()
    with pytest.raises(SequenceError, match='no frames'):
        open_sequence(small)


def test_no_readable_depth_image(small):
    for path in small.glob('*.depth.png'):
        path.write_bytes(b'garbage')
    with pytest.raises(SequenceError, match='none of the 4 depth images can be read'):
        open_sequence(small)


@pytest.mark.parametrize(
    'text',
    [
        'hello world\n',
        '585 0 320\n0 585 240\n',
        '0 0 320\n0 0 240\n0 0 1\n',
        '-585 0 320\n0 585 240\n0 0 1\n',
        '585 3 320\n0 585 240\n0 0 1\n',
        'nan 0 320\n0 585 240\n0 0 1\n',
        '',
    ],
    ids=['text', '2x3', 'zero-focal', 'negative-focal', 'skew', 'nan', 'empty'],
)
def test_malformed_intrinsics(small, text):
    (small / 'camera-intrinsics.txt').write_text(text)
    with pytest.raises(SequenceError, match='camera-intrinsics.txt: malformed camera intrinsics'):
        open_sequence(small)


def test_missing_intrinsics_uses_nominal_values(small, caplog):
    (small / 'camera-intrinsics.txt').unlink()
    with caplog.at_level(logging.WARNING, logger=datasets.__name__):
        sequence = open_sequence(small)
    k = sequence.intrinsics
    assert (k.width, k.height, k.fx, k.fy, k.cx, k.cy) == (640, 480, 585.0, 585.0, 320.0, 240.0)
    assert any('camera-intrinsics.txt' in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_intrinsics_file_is_used(small):
    (small / 'camera-intrinsics.txt').write_text('500 0 300\n0 510 250\n0 0 1\n')
    k = open_sequence(small).intrinsics
    assert (k.fx, k.fy, k.cx, k.cy) == (500.0, 510.0, 300.0, 250.0)


# -- frame files -------------------------------------------------------------------------------


def test_extra_files_are_ignored(small):
    cv2.imwrite(str(small / 'frame-000000.instance.png'), np.zeros((480, 640), np.uint16))
    (small / 'notes.txt').write_text('hello')
    assert len(open_sequence(small)) == COPIED_FRAMES


def test_indices_need_not_start_at_zero_or_be_contiguous(small):
    renumber = {0: 5, 1: 7, 2: 12, 3: 13}
    for old, new in sorted(renumber.items(), reverse=True):
        for suffix in ('color.jpg', 'depth.png', 'pose.txt'):
            (small / f'frame-{old:06d}.{suffix}').rename(small / f'frame-{new:06d}.{suffix}')
    (small / 'frame-000013.depth.png').unlink()  # a frame without depth is not a frame
    sequence = open_sequence(small)
    assert len(sequence) == 3
    frame = sequence.load(1)
    assert frame.index == 7
    assert frame.timestamp_s == pytest.approx(1 / 30.0)
    np.testing.assert_array_equal(frame.T_world_camera, np.loadtxt(small / 'frame-000007.pose.txt'))


def test_png_colour_is_accepted(small):
    bgr = cv2.imread(str(small / 'frame-000001.color.jpg'))
    (small / 'frame-000001.color.jpg').unlink()
    cv2.imwrite(str(small / 'frame-000001.color.png'), bgr)
    np.testing.assert_array_equal(open_sequence(small).load(1).color, bgr[:, :, ::-1])


def test_missing_colour_fails_only_that_frame(small):
    (small / 'frame-000002.color.jpg').unlink()
    sequence = open_sequence(small)
    assert len(sequence) == COPIED_FRAMES
    with pytest.raises(FrameError, match=r'frame-000002\.color\.jpg: colour image is missing'):
        sequence.load(2)
    for i in (0, 1, 3):
        assert sequence.load(i).index == i


def test_colour_removed_after_opening(small):
    sequence = open_sequence(small)
    (small / 'frame-000001.color.jpg').unlink()
    with pytest.raises(FrameError, match=r'frame-000001\.color\.jpg: colour image is missing'):
        sequence.load(1)


def test_garbage_depth(small):
    (small / 'frame-000001.depth.png').write_bytes(b'\x89PNG this is not an image' * 10)
    sequence = open_sequence(small)
    with pytest.raises(FrameError, match=r'frame-000001\.depth\.png: depth image is unreadable'):
        sequence.load(1)
    sequence.load(0)
    sequence.load(2)


def test_garbage_first_depth_does_not_stop_the_sequence(small, caplog):
    (small / 'frame-000000.depth.png').write_bytes(b'garbage')
    with caplog.at_level(logging.WARNING, logger=datasets.__name__):
        sequence = open_sequence(small)
    assert (sequence.intrinsics.width, sequence.intrinsics.height) == (640, 480)
    with pytest.raises(FrameError, match='frame-000000.depth.png'):
        sequence.load(0)
    assert sequence.load(1).index == 1


def test_depth_must_be_16_bit(small):
    cv2.imwrite(str(small / 'frame-000001.depth.png'), np.full((480, 640), 7, np.uint8))
    with pytest.raises(FrameError, match=r'frame-000001\.depth\.png: depth image must be single-channel 16-bit'):
        open_sequence(small).load(1)


def test_depth_65535_is_invalid(small):
    raw = read_depth_mm(small / 'frame-000001.depth.png')
    raw[:10, :10] = 65535
    cv2.imwrite(str(small / 'frame-000001.depth.png'), raw)
    depth = open_sequence(small).load(1).depth_m
    assert np.all(depth[:10, :10] == 0)
    assert depth.max() < 65.535


def test_depth_size_must_match_first_frame(small):
    raw = read_depth_mm(small / 'frame-000002.depth.png')
    cv2.imwrite(str(small / 'frame-000002.depth.png'), raw[:240, :320].copy())
    cv2.imwrite(str(small / 'frame-000002.color.jpg'), cv2.imread(str(small / 'frame-000002.color.jpg'))[:240, :320])
    sequence = open_sequence(small)
    with pytest.raises(
        FrameError,
        match=r'frame-000002\.depth\.png: depth image is 320x240, but the sequence is '
        r'640x480',
    ):
        sequence.load(2)


def test_colour_depth_size_mismatch(small):
    bgr = cv2.imread(str(small / 'frame-000003.color.jpg'))
    cv2.imwrite(str(small / 'frame-000003.color.jpg'), cv2.resize(bgr, (320, 240)))
    with pytest.raises(FrameError, match=r'frame-000003\.color\.jpg: colour image is 320x240 but its depth image'):
        open_sequence(small).load(3)


def test_pose_with_nan(small):
    pose = np.loadtxt(small / 'frame-000001.pose.txt')
    pose[0, 3] = np.nan
    np.savetxt(small / 'frame-000001.pose.txt', pose)
    sequence = open_sequence(small)
    with pytest.raises(FrameError, match=r'frame-000001\.pose\.txt: pose has NaN or infinite'):
        sequence.load(1)
    sequence.load(0)


def test_pose_not_rigid(small):
    pose = np.loadtxt(small / 'frame-000001.pose.txt')
    pose[:3, :3] *= 1.1
    np.savetxt(small / 'frame-000001.pose.txt', pose)
    with pytest.raises(FrameError, match=r'frame-000001\.pose\.txt: pose is not rigid'):
        open_sequence(small).load(1)


@pytest.mark.parametrize('text', ['1 2 3\n4 5 6\n', 'not a pose\n', ''], ids=['2x3', 'text', 'empty'])
def test_pose_malformed(small, text):
    (small / 'frame-000001.pose.txt').write_text(text)
    with pytest.raises(FrameError, match=r'frame-000001\.pose\.txt'):
        open_sequence(small).load(1)


def test_pose_missing(small):
    (small / 'frame-000001.pose.txt').unlink()
    with pytest.raises(FrameError, match=r'frame-000001\.pose\.txt: pose file is missing'):
        open_sequence(small).load(1)


# -- TUM RGB-D layout ------------------------------------------------------------------------

RGB_TIMES = [10.00, 10.10, 10.20, 10.30]
DEPTH_TIMES = [10.01, 10.115, 10.19, 10.50]  # the last has no colour image within 0.02 s
Q_IDENTITY = (0.0, 0.0, 0.0, 1.0)
Q_Z90 = (0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4))


def gt_line(t, translation, q):
    return f'{t:.4f} ' + ' '.join(f'{v:.9f}' for v in (*translation, *q))


DEFAULT_GROUNDTRUTH = [
    '# timestamp tx ty tz qx qy qz qw',
    gt_line(10.00, (0, 0, 0), Q_IDENTITY),
    gt_line(10.04, (1, 2, 3), Q_Z90),
    gt_line(10.10, (1, 2, 3), Q_Z90),
    gt_line(10.13, (1, 2, 3), Q_Z90),
]


def write_groundtruth(root, lines):
    (root / 'groundtruth.txt').write_text('\n'.join(lines) + '\n')


@pytest.fixture
def tum(small, tmp_path):
    """A TUM folder made of the copied frames: colour PNGs, depth at 5000 per metre."""
    root = tmp_path / 'rgbd_dataset_freiburg1_copy'
    (root / 'rgb').mkdir(parents=True)
    (root / 'depth').mkdir()
    rgb_lines, depth_lines = ['# colour images', '# timestamp filename'], ['# depth images']
    for k, t in enumerate(RGB_TIMES):
        cv2.imwrite(str(root / 'rgb' / f'{t:.6f}.png'), cv2.imread(str(small / f'frame-{k:06d}.color.jpg')))
        rgb_lines.append(f'{t:.6f} rgb/{t:.6f}.png')
    for k, t in enumerate(DEPTH_TIMES):
        raw = read_depth_mm(small / f'frame-{k:06d}.depth.png')
        cv2.imwrite(str(root / 'depth' / f'{t:.6f}.png'), (raw.astype(np.uint32) * 5).astype(np.uint16))
        depth_lines.append(f'{t:.6f} depth/{t:.6f}.png')
    (root / 'rgb.txt').write_text('\n'.join(rgb_lines) + '\n')
    (root / 'depth.txt').write_text('\n'.join(depth_lines) + '\n\n')
    write_groundtruth(root, DEFAULT_GROUNDTRUTH)
    return root


def test_tum_association_and_images(tum, small, caplog):
    with caplog.at_level(logging.INFO, logger=datasets.__name__):
        sequence = open_sequence(tum)
    assert sequence.layout == 'tum'
    assert len(sequence) == 3
    assert any('dropped 1 of 4 depth images' in r.getMessage() for r in caplog.records)
    assert [sequence.timestamp_s(i) for i in range(3)] == DEPTH_TIMES[:3]
    frame = sequence.load(1)
    assert frame.index == 1 and frame.timestamp_s == DEPTH_TIMES[1]
    np.testing.assert_array_equal(frame.color, read_rgb(small / 'frame-000001.color.jpg'))
    raw_mm = read_depth_mm(small / 'frame-000001.depth.png')
    np.testing.assert_allclose(frame.depth_m, raw_mm / 1000.0, rtol=1e-6)
    assert np.all(frame.depth_m[raw_mm == 0] == 0)


def test_tum_nearest_colour_is_chosen(tum, small):
    # Colour 10.10 is 0.015 s from depth 10.115; add 10.12 (0.005 s away): it must win.
    cv2.imwrite(str(tum / 'rgb' / 'late.png'), cv2.imread(str(small / 'frame-000003.color.jpg')))
    with (tum / 'rgb.txt').open('a') as f:
        f.write('10.120000 rgb/late.png\n')
    np.testing.assert_array_equal(open_sequence(tum).load(1).color, read_rgb(small / 'frame-000003.color.jpg'))


def test_tum_pose_interpolation(tum):
    # Depth 10.01 lies a quarter of the way from groundtruth 10.00 (identity at the origin)
    # to 10.04 (90 deg about z at (1, 2, 3)): 22.5 deg about z at (0.25, 0.5, 0.75).
    pose = open_sequence(tum).load(0).T_world_camera
    c, s = math.cos(math.radians(22.5)), math.sin(math.radians(22.5))
    expected = np.array([[c, -s, 0, 0.25], [s, c, 0, 0.5], [0, 0, 1, 0.75], [0, 0, 0, 1]])
    np.testing.assert_allclose(pose, expected, atol=1e-9)


def test_tum_interpolation_takes_the_short_arc(tum):
    lines = list(DEFAULT_GROUNDTRUTH)
    lines[2] = gt_line(10.04, (1, 2, 3), tuple(-v for v in Q_Z90))  # same rotation, opposite sign
    write_groundtruth(tum, lines)
    pose = open_sequence(tum).load(0).T_world_camera
    assert math.degrees(math.atan2(pose[1, 0], pose[0, 0])) == pytest.approx(22.5)


def test_tum_exact_groundtruth_time(tum):
    lines = list(DEFAULT_GROUNDTRUTH) + [gt_line(10.19, (4, 5, 6), Q_Z90)]
    write_groundtruth(tum, lines)
    pose = open_sequence(tum).load(2).T_world_camera
    np.testing.assert_allclose(pose[:3, 3], (4, 5, 6))
    np.testing.assert_allclose(pose[:3, :3], matrix_from_quaternion(Q_Z90), atol=1e-9)


def test_tum_frame_outside_groundtruth(tum):
    sequence = open_sequence(tum)
    with pytest.raises(FrameError, match=r'groundtruth\.txt: frame 2 .* outside the groundtruth time range'):
        sequence.load(2)
    sequence.load(1)


def test_tum_groundtruth_gap(tum):
    write_groundtruth(tum, [gt_line(10.00, (0, 0, 0), Q_IDENTITY), gt_line(10.20, (0, 0, 0), Q_IDENTITY)])
    with pytest.raises(FrameError, match='gap of the groundtruth'):
        open_sequence(tum).load(0)


def test_tum_quaternion_norm(tum):
    lines = list(DEFAULT_GROUNDTRUTH)
    lines[1] = gt_line(10.00, (0, 0, 0), (0, 0, 0, 1.0005))  # small deviation: normalised
    write_groundtruth(tum, lines)
    check_rigid_transform(open_sequence(tum).load(0).T_world_camera)
    for q in [(0, 0, 0, 1.1), (0, 0, 0, 0), (0, 0, math.nan, 1)]:
        lines[1] = gt_line(10.00, (0, 0, 0), q)
        write_groundtruth(tum, lines)
        with pytest.raises(FrameError, match='groundtruth.txt: line 2'):
            open_sequence(tum).load(0)


@pytest.mark.parametrize(
    'bad', ['10.05 1 2 3 0 0 0', '10.05 1 2 three 0 0 0 1', 'abc 1 2 3 0 0 0 1'], ids=['7-fields', 'word', 'bad-time']
)
def test_tum_malformed_groundtruth(tum, bad):
    write_groundtruth(tum, DEFAULT_GROUNDTRUTH + [bad])
    with pytest.raises(SequenceError, match=r'groundtruth\.txt: line 6'):
        open_sequence(tum)


def test_tum_malformed_rgb_list(tum):
    with (tum / 'rgb.txt').open('a') as f:
        f.write('10.4 rgb/a.png extra\n')
    with pytest.raises(SequenceError, match=r'rgb\.txt: line 7 has 3 fields'):
        open_sequence(tum)


def test_tum_missing_groundtruth(tum):
    (tum / 'groundtruth.txt').unlink()
    with pytest.raises(SequenceError, match='groundtruth.txt'):
        open_sequence(tum)


def test_tum_no_associated_frames(tum):
    (tum / 'rgb.txt').write_text('50.0 rgb/10.000000.png\n')
    with pytest.raises(SequenceError, match='no frames'):
        open_sequence(tum)


def test_tum_missing_images(tum):
    (tum / 'depth' / f'{DEPTH_TIMES[1]:.6f}.png').unlink()
    (tum / 'rgb' / f'{RGB_TIMES[0]:.6f}.png').unlink()
    sequence = open_sequence(tum)
    with pytest.raises(FrameError, match=r'depth/10\.115000\.png: depth image is missing'):
        sequence.load(1)
    with pytest.raises(FrameError, match=r'rgb/10\.000000\.png: colour image is missing'):
        sequence.load(0)


def test_tum_intrinsics(tum, tmp_path, caplog):
    k = open_sequence(tum).intrinsics
    assert (k.width, k.height, k.fx, k.fy, k.cx, k.cy) == (640, 480, 517.3, 516.5, 318.6, 255.3)

    fr3 = tum.rename(tmp_path / 'rgbd_dataset_freiburg3_long_office')
    assert open_sequence(fr3).intrinsics.fx == 535.4

    unknown = fr3.rename(tmp_path / 'my_recording')
    with caplog.at_level(logging.WARNING, logger=datasets.__name__):
        k = open_sequence(unknown).intrinsics
    assert (k.fx, k.fy, k.cx, k.cy) == (525.0, 525.0, 319.5, 239.5)
    assert any(r.levelno == logging.WARNING and 'intrinsics' in r.getMessage() for r in caplog.records)

    (unknown / 'camera-intrinsics.txt').write_text('500 0 300\n0 510 250\n0 0 1\n')
    assert open_sequence(unknown).intrinsics.fy == 510.0
    (unknown / 'camera-intrinsics.txt').write_text('500 0 300\n')
    with pytest.raises(SequenceError, match='malformed camera intrinsics'):
        open_sequence(unknown)
