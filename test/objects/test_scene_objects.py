"""Tests of gpt4scene_ros.objects.scene_objects end to end with real Open3D: a generated room fused into a SceneMap,
instances against the generator's ground truth, keyframes, markers, and the bad cases of the issue."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from conftest import fused_room

from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.common.settings.mapping import MappingConfig
from gpt4scene_ros.objects.evaluation import keyframe_coverage, load_truth, marker_correctness, match_instances
from gpt4scene_ros.objects.scene_objects import SceneObjects

MAPPING = MappingConfig(device='CPU:0', initial_block_count=2000)
CONFIG = InstanceConfig(num_keyframes=6)


@pytest.fixture(scope='module')
def room(tmp_path_factory):
    """A clean room (objects apart), 120 frames at 320x240, fused, with every frame offered to the objects."""
    folder = tmp_path_factory.mktemp('objects') / 'room'
    return fused_room(folder, 9, 120, MAPPING)


def fresh_objects(room, config=CONFIG):
    folder, sequence, scene_map, frames = room
    objects = SceneObjects(config, MAPPING)
    for frame in frames:
        objects.observe(
            frame.color, frame.depth_m, sequence.intrinsics, frame.T_world_camera, frame.timestamp_s, frame.index
        )
    return objects


def test_a_clean_room_gives_its_objects_stable_ids_and_correct_markers(room):
    folder, _, scene_map, _ = room
    objects = fresh_objects(room)
    snapshot = objects.update(*scene_map.surface(), 4.0, 1, all_candidates=True)
    truth = load_truth(folder / 'instances.json')
    matching = match_instances(snapshot.instances, truth)
    assert matching.recall(0.25) >= 0.8 and matching.precision(0.25) >= 0.6, (
        f'recall {matching.recall(0.25):.2f}, precision {matching.precision(0.25):.2f}'
    )
    truth_of = matching.truth_of()
    correct, total = marker_correctness(snapshot.keyframes, folder, truth_of)
    # Markers of extra instances (parts of furniture split off) count as wrong: bench/instances.py measures
    # 0.87 on 640x480 clean rooms; this 320x240 room is held to a looser bound.
    assert total >= 10 and correct / total >= 0.65, f'{correct}/{total} markers on their objects'
    assert keyframe_coverage(snapshot.keyframes, truth_of) == 1.0
    assert len(snapshot.keyframes) == 6
    assert [k.stamp_s for k in snapshot.keyframes] == sorted(k.stamp_s for k in snapshot.keyframes)
    ids = {i.id for i in snapshot.instances}
    assert {m.id for m in snapshot.bev_markers} == ids, 'every instance is marked on the BEV'
    for instance in snapshot.instances:
        for position in instance.keyframe_ids:
            assert instance.id in {m.id for m in snapshot.keyframes[position].markers}
    # The marked images differ from the plain ones only around the markers.
    marked = snapshot.bev_marked()
    assert marked.shape == snapshot.bev.image.shape and not np.array_equal(marked, snapshot.bev.image)
    # A static scene: the same map updated again keeps every ID.
    again = objects.update(*scene_map.surface(), 6.0, 2)
    assert {i.id for i in again.instances} == ids
    assert set(objects.tracker.events) and objects.tracker.events['new'] == len(ids)


def test_keyframes_uniform_in_time_and_coverage_on_the_same_candidates(room):
    folder, _, scene_map, _ = room
    objects = fresh_objects(room, dataclasses.replace(CONFIG, keyframe_selection='uniform'))
    snapshot = objects.update(*scene_map.surface(), 4.0, 1, all_candidates=True)
    stamps = [k.stamp_s for k in snapshot.keyframes]
    gaps = np.diff(stamps)
    assert len(stamps) == 6 and gaps.max() <= 2.5 * gaps.min(), f'uniform in time: {stamps}'
    coverage = objects.choose_keyframes('coverage', 6)
    ids = {i.id for i in snapshot.instances}
    assert keyframe_coverage(coverage, ids) >= keyframe_coverage(snapshot.keyframes, ids)


def test_a_keyframe_whose_pose_is_far_off_gets_no_markers(room):
    folder, sequence, scene_map, frames = room
    objects = SceneObjects(dataclasses.replace(CONFIG, num_keyframes=32), MAPPING)
    wrong = frames[10].T_world_camera.copy()
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    wrong[:3, :3] = turn @ wrong[:3, :3]  # turned by 90 degrees and moved: its depth lands off the map
    wrong[:3, 3] += (0.5, -0.4, 0.3)
    objects.observe(frames[10].color, frames[10].depth_m, sequence.intrinsics, wrong, 100.0, 999)
    for frame in frames[40:44]:
        objects.observe(
            frame.color, frame.depth_m, sequence.intrinsics, frame.T_world_camera, frame.timestamp_s, frame.index
        )
    snapshot = objects.update(*scene_map.surface(), 4.0, 1, all_candidates=True)
    assert 999 not in [k.index for k in snapshot.keyframes], 'the off-map view is not chosen'
    assert objects.counts['views_off_the_map'] == 1
    correct, total = marker_correctness(
        snapshot.keyframes,
        folder,
        match_instances(snapshot.instances, load_truth(folder / 'instances.json')).truth_of(),
    )
    assert total and correct / total >= 0.85


def test_empty_map_reset_and_candidates_that_barely_moved(room):
    _, sequence, scene_map, frames = room
    objects = SceneObjects(CONFIG, MAPPING)
    empty = objects.update(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8), np.zeros((0, 3), np.float32), 0.0)
    assert empty.instances == () and empty.keyframes == () and empty.bev_markers == ()
    assert empty.bev_marked().shape == empty.bev.image.shape
    frame = frames[0]
    assert objects.observe(frame.color, frame.depth_m, sequence.intrinsics, frame.T_world_camera, 0.0, 0)
    assert not objects.observe(frame.color, frame.depth_m, sequence.intrinsics, frame.T_world_camera, 0.1, 1), (
        'a frame that did not move is no new candidate'
    )
    first = objects.update(*scene_map.surface(), 1.0, 1)
    ids = {i.id for i in first.instances}
    assert ids
    objects.reset()
    assert objects.pending_candidates() == 0 and len(objects.pool) == 0
    after = objects.update(*scene_map.surface(), 2.0, 2)
    assert after.instances and min(i.id for i in after.instances) > max(ids), 'no ID is reused after a reset'


def test_markers_are_drawn_on_the_marked_keyframes_once_per_snapshot_and_size(room):
    """The marked keyframes carry their markers. The node publishes and every query shows the same marked
    images: drawn once per snapshot and size (read-only), and a new snapshot draws its own."""
    _, _, scene_map, _ = room
    objects = fresh_objects(room)
    snapshot = objects.update(*scene_map.surface(), 4.0, 1, all_candidates=True)
    keyframe = next(k for k in snapshot.keyframes if k.markers)
    marked = snapshot.marked(keyframe)
    marker = keyframe.markers[0]
    u, v = int(round(marker.u)), int(round(marker.v))
    assert np.any(marked[v - 3 : v + 4, u - 3 : u + 4] != keyframe.image[v - 3 : v + 4, u - 3 : u + 4])
    assert np.array_equal(
        cv2.absdiff(marked, keyframe.image).max(axis=2) > 0, cv2.absdiff(marked, keyframe.image).max(axis=2) > 0
    )
    assert snapshot.marked(keyframe) is marked and not marked.flags.writeable
    assert marked.shape == keyframe.image.shape
    fitted = snapshot.marked(keyframe, 200, 28)
    assert snapshot.marked(keyframe, 200, 28) is fitted and fitted.shape[:2] == (140, 196)
    bev = snapshot.bev_marked()
    assert snapshot.marked() is bev and bev.shape == snapshot.bev.image.shape
    later = objects.update(*scene_map.surface(), 5.0, 2)
    assert later.bev_marked() is not bev, 'a new snapshot draws its own images'
    np.testing.assert_array_equal(later.bev_marked(), later.marked(None, 0, 1))
