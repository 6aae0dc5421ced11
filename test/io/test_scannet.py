"""ScanNet scenes: the export reader (gpt4scene_ros.io.scannet), the ground-truth boxes
(gpt4scene_ros.eval.scannet_truth) and a generated room written in the layout (gpt4scene_ros.sim.scannet_export).

The hand-made scenes are written into ``tmp_path`` in the exact layout of ScanNet's SensReader export and its
annotation files: 1296x968 JPEG colour, 640x480 millimetre depth, 4x4 text matrices, a PLY mesh with segments.
"""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from gpt4scene_ros.eval.scannet_truth import ScanNetObject, read_scannet_objects
from gpt4scene_ros.io.open import open_sequence
from gpt4scene_ros.io.scannet import ScanNetSequence
from gpt4scene_ros.io.sequence import FrameError, SequenceError
from gpt4scene_ros.objects.boxes import OrientedBox, box_iou
from gpt4scene_ros.sim.scannet_export import DEFAULT_AXIS_ALIGNMENT, write_scannet_scene
from gpt4scene_ros.sim.scene import SyntheticSceneConfig
from gpt4scene_ros.sim.writer import write_sequence

SCENE = 'scene0000_00'
FRAME_NUMBERS = (0, 2, 10, 11)  # sorted by number, not by name ("10" < "2")
DEPTH_K = np.array([[577.870605, 0.0, 319.5], [0.0, 577.870605, 239.5], [0.0, 0.0, 1.0]])
COLOR_K = np.array([[1169.621094, 0.0, 646.295044], [0.0, 1167.105103, 489.927032], [0.0, 0.0, 1.0]])
ALIGNMENT = np.array([[0.0, -1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
"""90 degrees about z, then a shift by (1, 2, 0): (x, y, z) -> (1 - y, 2 + x, z)."""


def matrix4(K):
    matrix = np.eye(4)
    matrix[:3, :3] = K
    return matrix


def pose(k):
    """Frame ``k``'s camera-to-world pose: turned about z by 10k degrees, at (k, 0.5k, 1.5)."""
    c, s = math.cos(math.radians(10 * k)), math.sin(math.radians(10 * k))
    T = np.eye(4)
    T[:3, :3] = [[c, 0.0, s], [s, 0.0, -c], [0.0, 1.0, 0.0]]  # optical axes: z forward, horizontal
    T[:3, 3] = (k, 0.5 * k, 1.5)
    return T


def write_meta(root, alignment):
    lines = ['colorHeight = 968', 'colorWidth = 1296']
    if alignment is not None:
        lines.insert(0, 'axisAlignment = ' + ' '.join(f'{v:.6f}' for v in np.asarray(alignment).ravel()))
    (root / f'{root.name}.txt').write_text('\n'.join(lines + ['sceneType = Apartment']) + '\n')


def write_export(root, alignment=ALIGNMENT):
    """A SensReader export of FRAME_NUMBERS: colour left half red, right half blue; depth 1 m + 10 cm per frame
    number with a 0 (invalid) square; poses from :func:`pose`."""
    for name in ('color', 'depth', 'pose', 'intrinsic'):
        (root / name).mkdir(parents=True)
    color = np.zeros((968, 1296, 3), np.uint8)
    color[:, :648] = (0, 0, 255)  # BGR red
    color[:, 648:] = (255, 0, 0)  # BGR blue
    for k in FRAME_NUMBERS:
        cv2.imwrite(str(root / 'color' / f'{k}.jpg'), color)
        depth = np.full((480, 640), 1000 + 100 * k, np.uint16)
        depth[:40, :40] = 0
        cv2.imwrite(str(root / 'depth' / f'{k}.png'), depth)
        np.savetxt(root / 'pose' / f'{k}.txt', pose(k), fmt='%f')
    np.savetxt(root / 'intrinsic' / 'intrinsic_depth.txt', matrix4(DEPTH_K), fmt='%f')
    np.savetxt(root / 'intrinsic' / 'intrinsic_color.txt', matrix4(COLOR_K), fmt='%f')
    write_meta(root, alignment)
    return root


@pytest.fixture
def export(tmp_path):
    return write_export(tmp_path / SCENE)


# -- the export reader ----------------------------------------------------------------------------------


def test_frames_load_at_the_depth_size_with_depth_in_metres_and_the_depth_intrinsics(export):
    sequence = open_sequence(export)
    assert isinstance(sequence, ScanNetSequence) and sequence.layout == 'scannet'
    assert len(sequence) == len(FRAME_NUMBERS)
    k = sequence.intrinsics
    assert (k.width, k.height) == (640, 480)
    np.testing.assert_allclose(k.matrix(), DEPTH_K, atol=1e-6)
    for position, number in enumerate(FRAME_NUMBERS):
        assert sequence.timestamp_s(position) == pytest.approx(position / 30.0)
        frame = sequence.load(position)
        assert frame.index == number
        assert frame.color.shape == (480, 640, 3) and frame.color.dtype == np.uint8
        assert frame.depth.shape == (480, 640)
        depth_m = frame.depth_m
        assert np.all(depth_m[:40, :40] == 0)
        np.testing.assert_allclose(depth_m[100:, 100:], 1.0 + 0.1 * number, atol=1e-6)
    # The colour is the whole 1296x968 image resized: red on the left half, blue on the right, in RGB.
    color = frame.color.astype(int)
    assert np.all(np.abs(color[:, :300] - (255, 0, 0)) <= 8) and np.all(np.abs(color[:, 340:] - (0, 0, 255)) <= 8)


def test_poses_are_returned_in_the_axis_aligned_frame(export, tmp_path):
    sequence = open_sequence(export)
    np.testing.assert_allclose(sequence.axis_alignment, ALIGNMENT, atol=1e-6)
    frame = sequence.load(1)
    np.testing.assert_allclose(frame.T_world_camera, ALIGNMENT @ pose(2), atol=1e-5)
    # By hand: the camera at (2, 1, 1.5) is at (1 - 1, 2 + 2, 1.5) in the aligned frame.
    np.testing.assert_allclose(frame.T_world_camera[:3, 3], (0.0, 4.0, 1.5), atol=1e-5)

    plain = write_export(tmp_path / 'scene0001_00', alignment=None)
    sequence = open_sequence(plain)
    np.testing.assert_array_equal(sequence.axis_alignment, np.eye(4))
    np.testing.assert_allclose(sequence.load(1).T_world_camera, pose(2), atol=1e-5)


def test_the_meta_file_is_found_in_a_renamed_folder(export, tmp_path):
    renamed = export.rename(tmp_path / 'my-scan')
    np.testing.assert_allclose(open_sequence(renamed).axis_alignment, ALIGNMENT, atol=1e-6)


def test_a_frame_with_a_lost_tracking_pose_raises_frame_error_and_the_others_load(export):
    (export / 'pose' / '10.txt').write_text('\n'.join(['-inf -inf -inf -inf'] * 4) + '\n')
    (export / 'pose' / '11.txt').write_text('nan nan nan nan\n' * 4)
    sequence = open_sequence(export)
    for position in (2, 3):
        with pytest.raises(FrameError, match=r'-inf/NaN: the recording lost tracking') as error:
            sequence.load(position)
        assert f'{FRAME_NUMBERS[position]}.txt' in str(error.value)
    assert sequence.load(0).index == 0 and sequence.load(1).index == 2


def test_a_missing_colour_image_or_pose_raises_frame_error(export):
    (export / 'color' / '2.jpg').unlink()
    (export / 'pose' / '10.txt').unlink()
    sequence = open_sequence(export)
    with pytest.raises(FrameError, match=r'color/2\.jpg: colour image is missing'):
        sequence.load(1)
    with pytest.raises(FrameError, match=r'pose/10\.txt: pose file is missing'):
        sequence.load(2)


def depth_k_file(root):
    return root / 'intrinsic' / 'intrinsic_depth.txt'


def remove_folder(folder):
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


@pytest.mark.parametrize(
    ('damage', 'message'),
    [
        (lambda root: depth_k_file(root).unlink(), r'intrinsic_depth\.txt: camera intrinsics file is missing'),
        (lambda root: depth_k_file(root).write_text('1 2\n3 4\n'), r'intrinsic_depth\.txt: .*got shape \(2, 2\)'),
        (lambda root: depth_k_file(root).write_text('a b c\n'), r'intrinsic_depth\.txt: malformed'),
        (lambda root: np.savetxt(depth_k_file(root), np.ones((4, 4))), r'intrinsic_depth\.txt: .*not a pinhole'),
        (lambda root: remove_folder(root / 'pose'), r'pose: ScanNet export has no pose/ subfolder'),
        (lambda root: [p.unlink() for p in (root / 'depth').iterdir()], r'depth: ScanNet export has no frames'),
        (lambda root: write_meta(root, np.ones(15)), r'scene0000_00\.txt: axisAlignment must be 16 numbers'),
        (lambda root: write_meta(root, np.full((4, 4), 2.0)), r'scene0000_00\.txt: axisAlignment.*bottom row'),
    ],
    ids=[
        'no-intrinsics',
        'intrinsics-2x2',
        'intrinsics-text',
        'intrinsics-not-pinhole',
        'no-pose-folder',
        'no-depth',
        'alignment-15',
        'alignment-not-rigid',
    ],
)
def test_an_unplayable_export_raises_sequence_error_naming_the_file(export, damage, message):
    damage(export)
    with pytest.raises(SequenceError, match=message):
        open_sequence(export)


# -- the ground-truth boxes ------------------------------------------------------------------------------

OBJECT_VERTICES = {
    # objectId: (label, segments, vertices in the scan frame)
    0: ('chair', [10, 11], [(1.0, 3.0, 0.0), (2.0, 5.0, 1.0), (1.5, 4.0, 0.5)]),
    1: ('table', [12], [(-1.0, -1.0, 0.0), (0.0, 1.0, 0.75), (-0.5, 0.0, 0.75), (0.0, -1.0, 0.0)]),
    2: ('lamp', [13], [(3.0, 3.0, 1.0)]),
    3: ('window', [14, 15], [(4.0, 0.0, 1.0), (4.0, 2.0, 2.0)]),
}
EXPECTED_SCAN = {  # by hand: centre = middle of the extremes, size = their difference
    0: ((1.5, 4.0, 0.5), (1.0, 2.0, 1.0)),
    1: ((-0.5, 0.0, 0.375), (1.0, 2.0, 0.75)),
    2: ((3.0, 3.0, 1.0), (0.0, 0.0, 0.0)),
    3: ((4.0, 1.0, 1.5), (0.0, 2.0, 1.0)),
}
EXPECTED_ALIGNED = {  # (x, y, z) -> (1 - y, 2 + x, z): x from y's range, y from x's range
    0: ((-3.0, 3.5, 0.5), (2.0, 1.0, 1.0)),
    1: ((1.0, 1.5, 0.375), (2.0, 1.0, 0.75)),
    2: ((-2.0, 5.0, 1.0), (0.0, 0.0, 0.0)),
    3: ((0.0, 6.0, 1.5), (2.0, 0.0, 1.0)),
}


def write_truth(root, alignment=ALIGNMENT, ascii_ply=False):
    """Mesh, segments and aggregation of the four objects of OBJECT_VERTICES, plus background vertices (segment
    0) and a fifth annotated object whose segment no vertex has."""
    root.mkdir(parents=True, exist_ok=True)
    vertices, segments = [(0.0, 0.0, 0.0), (9.0, 9.0, 3.0)], [0, 0]
    for _, group_segments, points in OBJECT_VERTICES.values():
        for n, point in enumerate(points):
            vertices.append(point)
            segments.append(group_segments[n % len(group_segments)])
    write_ply(root / f'{root.name}_vh_clean_2.ply', np.array(vertices), ascii_ply)
    (root / f'{root.name}_vh_clean_2.0.010000.segs.json').write_text(
        json.dumps({'params': {}, 'sceneId': root.name, 'segIndices': segments})
    )
    groups = [{'id': i, 'objectId': i, 'segments': s, 'label': label} for i, (label, s, _) in OBJECT_VERTICES.items()]
    groups.append({'id': 4, 'objectId': 4, 'segments': [77], 'label': 'ghost'})
    (root / f'{root.name}.aggregation.json').write_text(
        json.dumps({'sceneId': f'scannet.{root.name}', 'segGroups': groups})
    )
    write_meta(root, alignment)
    return root


def write_ply(path, vertices, ascii_ply):
    """ScanNet's vertex layout (float xyz, uchar rgba) and a face element after the vertices."""
    header = (
        f'ply\nformat {"ascii" if ascii_ply else "binary_little_endian"} 1.0\ncomment test\n'
        f'element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n'
        'property uchar red\nproperty uchar green\nproperty uchar blue\nproperty uchar alpha\n'
        'element face 1\nproperty list uchar int vertex_indices\nend_header\n'
    )
    if ascii_ply:
        body = ''.join(f'{x} {y} {z} 10 20 30 255\n' for x, y, z in vertices) + '3 0 1 2\n'
        path.write_text(header + body)
        return
    table = np.zeros(len(vertices), [('xyz', '<f4', 3), ('rgba', 'u1', 4)])
    table['xyz'] = vertices
    face = np.array([3], np.uint8).tobytes() + np.array([0, 1, 2], '<i4').tobytes()
    path.write_bytes(header.encode() + table.tobytes() + face)


def assert_boxes(objects, expected):
    assert [o.object_id for o in objects] == sorted(expected)
    for obj in objects:
        label, _, points = OBJECT_VERTICES[obj.object_id]
        assert isinstance(obj, ScanNetObject) and obj.label == label and obj.num_vertices == len(points)
        center, size = expected[obj.object_id]
        np.testing.assert_allclose(obj.box.center, center, atol=1e-6)
        np.testing.assert_allclose(obj.box.size, size, atol=1e-6)
        assert obj.box.yaw == 0.0


@pytest.mark.parametrize('ascii_ply', [False, True], ids=['binary', 'ascii'])
def test_ground_truth_boxes_equal_the_hand_computed_ones_in_the_aligned_frame(tmp_path, ascii_ply):
    assert_boxes(read_scannet_objects(write_truth(tmp_path / SCENE, ascii_ply=ascii_ply)), EXPECTED_ALIGNED)


def test_ground_truth_boxes_without_an_axis_alignment_stay_in_the_scan_frame(tmp_path):
    assert_boxes(read_scannet_objects(write_truth(tmp_path / SCENE, alignment=None)), EXPECTED_SCAN)
    (tmp_path / SCENE / f'{SCENE}.txt').unlink()  # no meta file at all
    assert_boxes(read_scannet_objects(tmp_path / SCENE), EXPECTED_SCAN)


def test_malformed_ground_truth_raises_value_error_naming_the_file_and_the_field(tmp_path):
    root = write_truth(tmp_path / SCENE)
    aggregation = root / f'{SCENE}.aggregation.json'
    record = json.loads(aggregation.read_text())

    def broken(message, path, content):
        original = path.read_bytes()
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        with pytest.raises(ValueError, match=message):
            read_scannet_objects(root)
        path.write_bytes(original)

    broken(r'scene0000_00\.aggregation\.json: not valid JSON', aggregation, '{"segGroups": [')
    broken(r'aggregation\.json: field segGroups must be a list', aggregation, json.dumps({'segGroups': {}}))
    groups = record['segGroups']
    del groups[1]['objectId']
    broken(r'aggregation\.json: segGroups\[1\]\.objectId must be an integer', aggregation, json.dumps(record))
    groups[1]['objectId'] = 0
    broken(r'segGroups\[1\]\.objectId 0 is repeated', aggregation, json.dumps(record))
    groups[1].update(objectId=1, segments='12')
    broken(r'segGroups\[1\]\.segments must be a list', aggregation, json.dumps(record))
    segments = root / f'{SCENE}_vh_clean_2.0.010000.segs.json'
    broken(r'segs\.json: segIndices has 3 entries but the mesh has 12', segments, '{"segIndices": [0, 0, 1]}')
    broken(r'segs\.json: field segIndices must be a list', segments, '{"segIndex": []}')
    ply = root / f'{SCENE}_vh_clean_2.ply'
    broken(r'_vh_clean_2\.ply: not a PLY file', ply, 'solid mesh\n')
    cut = ply.read_bytes().index(b'end_header\n') + len('end_header\n') + 20
    broken(r'_vh_clean_2\.ply: file ends inside the vertex data', ply, ply.read_bytes()[:cut])
    broken(r'scene0000_00\.txt: axisAlignment has a non-numeric value', root / f'{SCENE}.txt', 'axisAlignment = a\n')
    aggregation.unlink()
    with pytest.raises(ValueError, match=r'scene0000_00\.aggregation\.json: file is missing'):
        read_scannet_objects(root)


# -- a generated room in the ScanNet layout ------------------------------------------------------------------


@pytest.fixture(scope='module')
def generated(tmp_path_factory):
    """A generated room (90 frames at 320x240, objects apart) and the ScanNet scene written from it."""
    root = tmp_path_factory.mktemp('scannet')
    write_sequence(SyntheticSceneConfig(seed=1, num_frames=90, clutter='none').with_resolution(320, 240), root / 'room')
    return root / 'room', write_scannet_scene(root / 'room', root / 'scans' / 'scene0001_00', 'scene0001_00')


def test_a_generated_room_reads_back_as_a_scannet_export_in_the_generators_frame(generated):
    room, scene = generated
    assert not np.allclose(DEFAULT_AXIS_ALIGNMENT, np.eye(4)), 'the alignment is exercised'
    sequence = open_sequence(scene)
    original = open_sequence(room)
    assert sequence.layout == 'scannet' and len(sequence) == len(original) == 90
    assert sequence.intrinsics == original.intrinsics
    assert cv2.imread(str(scene / 'color' / '0.jpg')).shape == (968, 1296, 3)
    for position in (0, 45, 89):
        frame, truth = sequence.load(position), original.load(position)
        assert frame.index == truth.index
        np.testing.assert_allclose(frame.T_world_camera, truth.T_world_camera, atol=2e-5)
        scan_pose = np.loadtxt(scene / 'pose' / f'{truth.index}.txt')  # the file holds the un-aligned pose
        np.testing.assert_allclose(DEFAULT_AXIS_ALIGNMENT @ scan_pose, truth.T_world_camera, atol=2e-5)
        assert not np.allclose(scan_pose, truth.T_world_camera, atol=0.1)
        np.testing.assert_array_equal(frame.depth, truth.depth)
        assert np.abs(frame.color.astype(int) - truth.color).mean() < 4.0, 'colour upscaled and back'


def test_a_generated_rooms_ground_truth_boxes_match_the_generators(generated):
    room, scene = generated
    truth = {item['id']: item for item in json.loads((room / 'instances.json').read_text())['objects']}
    objects = read_scannet_objects(scene)
    assert {o.object_id for o in objects} <= set(truth)
    observed = [o for o in objects if o.num_vertices >= 100]
    assert len(observed) >= 0.8 * len(truth)
    ious = []
    for obj in observed:
        item = truth[obj.object_id]
        true_box = OrientedBox(item['center'], item['size'], item['yaw'])
        assert obj.label == item['label']
        grown = OrientedBox(true_box.center, np.add(true_box.size, 0.06), true_box.yaw)
        assert grown.contains(obj.box.corners()).all(), f'{obj} reaches 3 cm beyond {true_box}'
        ious.append(box_iou(obj.box, true_box))
    # An object seen from one side only (a ball on the floor, its lower half never in view) has half a box.
    assert np.mean(np.array(ious) >= 0.7) >= 0.9 and np.median(ious) >= 0.85, np.round(ious, 2)


def test_the_exporter_refuses_foreign_folders_and_rewrites_its_own(tmp_path):
    room = tmp_path / 'room'
    write_sequence(SyntheticSceneConfig(seed=2, num_frames=6).with_resolution(160, 120), room)
    scene = write_scannet_scene(room, tmp_path / 'scene0002_00', 'scene0002_00', frame_step=1)
    (scene / 'color' / '5.jpg').unlink()
    assert write_scannet_scene(room, scene, 'scene0002_00', frame_step=1) == scene
    assert (scene / 'color' / '5.jpg').is_file() and len(open_sequence(scene)) == 6
    with pytest.raises(ValueError, match='not a generated room'):
        write_scannet_scene(tmp_path, tmp_path / 'out')
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'notes.txt').write_text('mine')
    with pytest.raises(ValueError, match='non-empty folder not written by'):
        write_scannet_scene(room, foreign)
    with pytest.raises(ValueError, match='frame_step'):
        write_scannet_scene(room, tmp_path / 'again', frame_step=0)
