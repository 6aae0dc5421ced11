"""Instance masks fused into persistent 3D instances (gpt4scene_ros.objects.segmentation.masks) on a generated
room with real Open3D: SAM-like masks made from the generator's instance images, scored against its ground truth,
and the bad masks a robot meets (wrong size or type, missing files, one mask over everything, floors and walls)."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
from conftest import fused_room

from gpt4scene_ros.common.masks import FrameMasks, MaskError, check_masks
from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.common.settings.mapping import MappingConfig
from gpt4scene_ros.io.masks import MaskFolder
from gpt4scene_ros.objects.evaluation import load_truth, marker_correctness, match_instances
from gpt4scene_ros.objects.offline import process_sequence
from gpt4scene_ros.objects.scene_objects import SceneObjects
from gpt4scene_ros.sim.masks import CLEAN, MaskDegradation, sam_like_masks, write_sam_like_masks

MAPPING = MappingConfig(device='CPU:0', initial_block_count=2000)
CONFIG = InstanceConfig(num_keyframes=6)


@pytest.fixture(scope='module')
def room(tmp_path_factory):
    """A room of 120 frames at 320x240 with tucked chairs, fused, and its true instance image per frame."""
    folder = tmp_path_factory.mktemp('masks') / 'room'
    folder, sequence, scene_map, frames = fused_room(folder, 9, 120, MAPPING)
    instances = [cv2.imread(str(folder / f'frame-{f.index:06d}.instance.png'), cv2.IMREAD_UNCHANGED) for f in frames]
    return folder, sequence, scene_map, frames, instances


def fuse(room, make_masks, frames=None, objects=None):
    """Offer every frame (or ``frames``) with the masks ``make_masks(k, instance_image)`` gives, then update."""
    folder, sequence, scene_map, all_frames, instances = room
    objects = objects or SceneObjects(CONFIG, MAPPING)
    for frame in all_frames if frames is None else frames:
        masks = make_masks(frame.index, instances[frame.index])
        objects.observe(
            frame.color,
            frame.depth_m,
            sequence.intrinsics,
            frame.T_world_camera,
            frame.timestamp_s,
            frame.index,
            1.0,
            masks,
        )
    return objects, objects.update(*scene_map.surface(), 10.0, 1, all_candidates=True)


def sam_like(seed: int, degradation: MaskDegradation | None = None):
    rng = np.random.default_rng(seed)
    degradation = degradation or MaskDegradation()
    return lambda index, instance: FrameMasks(sam_like_masks(instance, rng, degradation))


def test_sam_like_masks_make_one_instance_per_object_legs_with_their_table_chairs_apart(room):
    folder = room[0]
    objects, snapshot = fuse(room, sam_like(1))
    truth = load_truth(folder / 'instances.json')
    matching = match_instances(snapshot.instances, truth)
    assert matching.recall(0.5) >= 0.9 and matching.precision(0.5) >= 0.9, (
        f'recall {matching.recall(0.5):.2f}, precision {matching.precision(0.5):.2f} at IoU 0.5 with '
        f'{len(snapshot.instances)} instances for {len(truth)} objects'
    )
    truth_of = matching.truth_of(0.5)
    by_truth = {t: i for i, t in truth_of.items()}
    table = next(t for t in truth if t.label == 'table')
    chairs = [t for t in truth if t.label == 'chair']
    assert chairs and all(c.id in by_truth for c in chairs), 'every tucked chair is its own instance'
    table_box = snapshot.instance(by_truth[table.id]).box
    # The legs join their top: the box reaches down to the floor (a top alone is a few cm tall).
    assert table_box.size[2] >= 0.8 * table.box.size[2], f'table box {table_box.size} for {table.box.size}'
    correct, total = marker_correctness(snapshot.keyframes, folder, truth_of)
    assert total >= 10 and correct / total >= 0.9, f'{correct}/{total} markers on their objects'
    assert objects.masks.counts['masks_rejected_as_structure'] > 0, 'the floor and wall masks were seen'


def test_floor_wall_and_whole_image_masks_never_become_objects(room):
    only_structure = MaskDegradation(miss_rate=1.0)  # every object missed: the floor and walls are the masks
    objects, snapshot = fuse(room, sam_like(2, only_structure))
    assert snapshot.instances == () and objects.masks.counts['masks_rejected_as_structure'] >= 80

    def one_mask(index, instance):
        return FrameMasks(np.ones(instance.shape, np.uint16))

    objects, snapshot = fuse(room, one_mask)
    counts = objects.masks.counts
    assert snapshot.instances == () and counts['masks_rejected_as_structure'] == counts['mask_views'] >= 40


def test_ids_survive_a_revisit_of_the_mapped_room(room):
    folder, frames = room[0], room[3]
    truth = load_truth(folder / 'instances.json')
    objects, first = fuse(room, sam_like(3))
    boxes = {i.id: i.box.center for i in first.instances}
    found_first = set(match_instances(first.instances, truth).truth_of(0.25).values())
    objects.gate.reset()  # the robot comes back: the same views are candidates again, with new masks
    _, again = fuse(room, sam_like(4), frames=frames[::2], objects=objects)
    assert set(boxes) <= {i.id for i in again.instances}, 'no ID lost'
    for instance in again.instances:
        if instance.id in boxes:
            assert np.linalg.norm(np.subtract(instance.box.center, boxes[instance.id])) < 0.1
    # A new ID only for an object not found before (seen better this time), never a second ID for a known one.
    truth_of = match_instances(again.instances, truth).truth_of(0.25)
    for instance_id, truth_id in truth_of.items():
        assert instance_id in boxes or truth_id not in found_first, f'object {truth_id} got a second ID'
    assert len(again.instances) - len(first.instances) <= 1


def test_mask_labels_name_the_instances(room):
    folder = room[0]
    truth = {t.id: t.label for t in load_truth(folder / 'instances.json')}

    def named(index, instance):
        labels = sam_like_masks(instance, np.random.default_rng(index), CLEAN)
        # CLEAN numbers masks per frame at random: recover each mask's object to name it.
        names = {}
        for number in np.unique(labels[labels > 0]).tolist():
            objects, counts = np.unique(instance[labels == number], return_counts=True)
            names[number] = truth.get(int(objects[np.argmax(counts)]), '')
        return FrameMasks(labels, names, {n: 0.9 for n in names})

    _, snapshot = fuse(room, named)
    matching = match_instances(snapshot.instances, load_truth(folder / 'instances.json'))
    truth_by_id = {t.id: t for t in load_truth(folder / 'instances.json')}
    named_right = [snapshot.instance(i).label == truth_by_id[t].label for i, t in matching.truth_of(0.25).items()]
    assert len(named_right) >= 8 and all(named_right)


def test_bad_mask_images_are_refused_with_what_is_wrong():
    with pytest.raises(MaskError, match='320x240 but the colour image is 640x480'):
        check_masks(np.zeros((240, 320), np.uint16), (480, 640))
    with pytest.raises(MaskError, match='8- or 16-bit'):
        check_masks(np.zeros((480, 640), np.float32), (480, 640))
    with pytest.raises(MaskError, match='single-channel'):
        check_masks(np.zeros((480, 640, 3), np.uint8), (480, 640))
    assert check_masks(np.ones((480, 640, 1), np.uint8), (480, 640)).dtype == np.uint16


def test_a_masks_folder_with_missing_and_broken_files_fuses_the_rest(room, tmp_path, caplog):
    folder = room[0]
    masks = tmp_path / 'masks'
    assert write_sam_like_masks(folder, masks, CLEAN, seed=5) == 120
    for index in range(0, 120, 3):  # a third of the frames have no masks
        (masks / f'frame-{index:06d}.mask.png').unlink()
    cv2.imwrite(str(masks / 'frame-000001.mask.png'), np.zeros((10, 10), np.uint16))  # wrong size
    (masks / 'frame-000002.mask.png').write_bytes(b'not a png')
    (masks / 'frame-000004.mask.json').write_text('["not", "an", "object"]')
    with pytest.raises(MaskError, match='frame-000001.mask.png: mask image is 10x10'):
        MaskFolder(masks).load(1, (240, 320))
    assert MaskFolder(masks).load(0, (240, 320)) is None
    with pytest.raises(ValueError, match='holds no frame'):
        MaskFolder(tmp_path)
    summary = process_sequence(
        folder,
        tmp_path / 'out',
        MAPPING,
        gravity='none',
        progress=False,
        instances=CONFIG,
        update_every=0,
        masks_dir=masks,
    )
    assert summary['mask_errors'] == 3
    assert summary['frames_without_masks'] == 40 + 3 and summary['frames_with_masks'] == 77
    assert summary['integrated'] == 120 and summary['instances'] >= 8
    warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
    assert sum('frame-000001.mask.png' in w for w in warnings) == 1
    assert sum('40 of 120 frames have no masks' in w for w in warnings) == 1, warnings
    assert json.loads((tmp_path / 'out' / 'timing.json').read_text())['mask_errors'] == 3


def test_a_segmentation_models_masks_are_fused_and_name_the_instances(room, tiny_models):
    """detector: transformers with a tiny random SegFormer through the real pipeline: its masks (random classes)
    are fused like a mask source's; whatever instances they make carry the model's labels."""
    from gpt4scene_ros.objects.detectors import Detection, detection_masks, make_detector

    big, small = np.zeros((40, 60), bool), np.zeros((40, 60), bool)
    big[5:35, 5:55], small[10:15, 10:15] = True, True
    masks = detection_masks(
        [Detection('cup', 0.8, mask=small), Detection('table', 0.9, mask=big), Detection('chair', 0.7, (0, 0, 9, 9))],
        (40, 60),
    )
    assert masks is not None and sorted(masks.names.values()) == ['cup', 'table']
    cup = next(n for n, name in masks.names.items() if name == 'cup')
    assert np.all(masks.labels[small] == cup) and np.count_nonzero(masks.labels) == big.sum()
    assert detection_masks([Detection('chair', 0.7, (0, 0, 9, 9))], (40, 60)) is None, 'boxes are no masks'

    segmenter = make_detector('transformers', str(tiny_models / 'segformer'), min_score=0.0)
    objects, snapshot = update_with_detector(room, segmenter, every=4, per_update=6)
    assert objects.masks.counts['mask_views'] >= 1 and objects.counts['detector_errors'] == 0
    labels = set(segmenter.pipeline.model.config.id2label.values())
    assert all(i.label in labels | {''} for i in snapshot.instances)


def test_a_sam_generators_masks_are_fused_without_naming_anything(room, tiny_models):
    """detector: transformers with a tiny random SAM: its point-prompted masks go through the mask fusion (the
    instances come from them) and, having no labels, name nothing."""
    from gpt4scene_ros.objects.detectors import make_detector

    generator = make_detector('transformers', str(tiny_models / 'sam'), min_score=0.0)
    objects, snapshot = update_with_detector(room, generator, every=8, per_update=4)
    assert objects.counts['detector_errors'] == 0 and objects.masks.counts['mask_views'] >= 1
    assert all(i.label == '' for i in snapshot.instances)


def update_with_detector(room, detector, every: int, per_update: int):
    """Every ``every``-th frame of the room observed with ``detector``, then one update: (objects, snapshot)."""
    folder, sequence, scene_map, frames, _ = room
    objects = SceneObjects(dataclasses.replace(CONFIG, candidates_per_update=per_update), MAPPING, detector)
    for frame in frames[::every]:
        objects.observe(
            frame.color, frame.depth_m, sequence.intrinsics, frame.T_world_camera, frame.timestamp_s, frame.index
        )
    return objects, objects.update(*scene_map.surface(), 1.0, 1)


def test_mask_instances_survive_a_map_file_save_and_load(room, tmp_path):
    from gpt4scene_ros.mapping.tsdf import SceneMap
    from gpt4scene_ros.objects.mapper import Mapper

    scene_map = room[2]
    objects, first = fuse(room, sam_like(3))
    path = tmp_path / 'room.map'
    Mapper(scene_map, objects).save(path)
    loaded_map, reloaded = SceneMap(MAPPING), SceneObjects(CONFIG, MAPPING)
    _, note = Mapper(loaded_map, reloaded).load(path)
    assert note == f', {len(objects.tracker.tracks)} instances'
    assert len(reloaded.masks) == len(objects.masks) and reloaded.masks.views_fused == objects.masks.views_fused
    # No new masks after the load: the mask instances, not a geometric segmentation, give the same IDs and boxes.
    again = reloaded.update(*loaded_map.surface(), 20.0, 2, all_candidates=True)
    before = {i.id: i.box for i in first.instances}
    assert {i.id for i in again.instances} == set(before)
    for instance in again.instances:
        assert np.linalg.norm(np.subtract(instance.box.center, before[instance.id].center)) < 0.05
    tracker_state, arrays = objects.state()
    arrays['mask_sizes'] = arrays['mask_sizes'][:-1]
    with pytest.raises(ValueError, match='mask fusion state'):
        SceneObjects(CONFIG, MAPPING).restore(tracker_state, arrays)
