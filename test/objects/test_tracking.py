"""Tests of gpt4scene_ros.objects.tracking: persistent IDs across updates, merges, splits, the cap, persistence."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from gpt4scene_ros.objects.boxes import OrientedBox, fit_box
from gpt4scene_ros.objects.tags import object_tag
from gpt4scene_ros.objects.tracking import InstanceTracker, SegmentObservation
from gpt4scene_ros.objects.voxels import pack_keys


def blob(x, y, size=6, z=0, dz=0):
    """A cube of size^3 voxel keys at voxel (x, y, z), as one segment."""
    grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing='ij'), axis=-1).reshape(-1, 3)
    keys = pack_keys(grid + (x, y, z + dz))
    center = (np.array([x, y, z]) + size / 2) * 0.02
    return SegmentObservation(np.sort(keys), OrientedBox(center, (size * 0.02,) * 3))


def merged(*segments):
    return SegmentObservation(np.unique(np.concatenate([s.voxel_keys for s in segments])), segments[0].box)


def test_ids_are_stable_across_updates_and_small_shifts():
    tracker = InstanceTracker()
    first = tracker.update([blob(0, 0), blob(40, 0), blob(0, 40)], 1.0)
    assert first == [1, 2, 3]
    # The surface is re-fused: every voxel moves by one, and the order of the segments changes.
    again = tracker.update([blob(1, 40), blob(40, 1, dz=1), blob(1, 0)], 2.0)
    assert again == [3, 2, 1]
    instances = tracker.published()
    assert [i.id for i in instances] == [1, 2, 3]
    assert instances[0].first_seen_s == 1.0 and instances[0].last_seen_s == 2.0
    assert object_tag(3) == '<OBJ003>' and object_tag(123) == '<OBJ123>'


def test_an_object_out_of_sight_keeps_its_id_and_ids_are_never_reused():
    tracker = InstanceTracker()
    tracker.update([blob(0, 0), blob(40, 0)], 1.0)
    assert tracker.update([blob(0, 0)], 2.0) == [1]  # object 2 missing (its segment flickered)
    assert [i.id for i in tracker.published()] == [1]
    assert tracker.update([blob(0, 0), blob(80, 80)], 3.0) == [1, 0], 'a new segment waits for confirmation'
    assert tracker.update([blob(0, 0), blob(40, 0), blob(80, 80)], 4.0) == [1, 2, 3], 'object 2 comes back as 2'
    assert tracker.events['returned'] == 1
    assert next(i for i in tracker.published() if i.id == 3).first_seen_s == 3.0, 'seen since its candidate'


def test_a_segment_that_flickers_for_one_update_costs_no_id():
    tracker = InstanceTracker()
    assert tracker.update([blob(0, 0)], 1.0) == [1], 'nothing known yet: published at once'
    assert tracker.update([blob(0, 0), blob(40, 0)], 2.0) == [1, 0]
    assert [i.id for i in tracker.published()] == [1], 'a candidate is not published'
    assert tracker.update([blob(0, 0), blob(0, 40)], 3.0) == [1, 0], 'the first candidate is gone, another waits'
    assert tracker.update([blob(0, 0), blob(0, 40, dz=1)], 4.0) == [1, 2], 'seen again: the next id'
    assert tracker.events['new'] == 2 and tracker.next_id == 3
    unconfirmed = InstanceTracker()
    unconfirmed.update([blob(0, 0)], 1.0)
    assert unconfirmed.update([blob(0, 0), blob(40, 0)], 2.0, confirm=False) == [1, 2], 'already confirmed'
    unconfirmed.update([blob(0, 0), blob(40, 40)], 3.0)
    unconfirmed.reset()
    assert unconfirmed.update([blob(40, 40)], 4.0) == [3], 'after a reset nothing is known: at once'
    assert unconfirmed.candidates == {}


def test_a_merged_instance_gets_its_id_back_when_it_splits_off_again_and_a_new_part_gets_a_new_one():
    tracker = InstanceTracker()
    a, b = blob(0, 0), blob(6, 0)  # touching blobs, two instances
    assert tracker.update([a, b], 1.0) == [1, 2]
    assert tracker.update([merged(a, b)], 2.0) == [1]
    assert tracker.events['merged'] == 1 and [i.id for i in tracker.published()] == [1]
    assert tracker.update([a, b], 3.0) == [1, 0], 'split off again: it waits for confirmation, like a new segment'
    assert tracker.update([merged(a, b)], 4.0) == [1], 'a flicker: nothing published'
    assert tracker.update([a, b], 5.0) == [1, 0]
    assert tracker.update([a, b], 6.0) == [1, 2], 'then it is back with its old ID'
    assert tracker.events['returned'] == 1 and tracker.next_id == 3
    c = blob(12, 0)  # a part of the merged segment that was never an instance of its own
    assert tracker.update([merged(a, c)], 7.0) == [1]
    assert tracker.update([a, c], 8.0) == [1, 0], 'the split-off part waits for confirmation'
    assert tracker.update([a, c], 9.0) == [1, 3], 'then is a new instance'
    assert tracker.events['split'] == 1


def test_at_most_max_instances_are_published_smallest_left_out_with_a_log_line(caplog):
    tracker = InstanceTracker(max_instances=5)
    segments = [blob(20 * k, 0, size=2 + k) for k in range(8)]
    with caplog.at_level(logging.INFO, logger='gpt4scene_ros.objects.tracking'):
        ids = tracker.update(segments, 1.0)
    assert ids[:3] == [0, 0, 0] and sorted(ids[3:]) == [1, 2, 3, 4, 5]
    assert len(tracker.published()) == 5 and tracker.events['dropped_over_cap'] == 3
    assert any('max_instances=5' in record.message for record in caplog.records)
    with pytest.raises(ValueError):
        InstanceTracker(max_instances=0)


def test_hundreds_of_fragments_are_capped():
    tracker = InstanceTracker(max_instances=100)
    fragments = [blob(3 * (k % 30), 3 * (k // 30), size=1 + k % 3) for k in range(300)]
    ids = tracker.update(fragments, 1.0)
    assert sum(i > 0 for i in ids) == 100 and max(ids) == 100
    kept = [len(f.voxel_keys) for f, i in zip(fragments, ids) if i]
    dropped = [len(f.voxel_keys) for f, i in zip(fragments, ids) if not i]
    assert min(kept) >= max(dropped), 'the smallest are dropped first'


def test_reset_forgets_instances_but_not_the_counter():
    tracker = InstanceTracker()
    tracker.update([blob(0, 0), blob(40, 0)], 1.0)
    tracker.reset()
    assert tracker.published() == [] and tracker.update([blob(0, 0)], 2.0) == [3]


def test_state_round_trip_keeps_ids_and_the_counter_never_goes_back():
    tracker = InstanceTracker()
    tracker.update([blob(0, 0), blob(40, 0), blob(80, 0)], 1.0)
    tracker.vote_label(2, 'chair', 0.9)
    state = tracker.state()
    restored = InstanceTracker()
    restored.next_id = 2
    restored.restore(state)
    assert restored.next_id == 4
    assert restored.update([blob(40, 1), blob(80, 0)], 5.0) == [2, 3]
    chair = next(i for i in restored.published() if i.id == 2)
    assert chair.label == 'chair' and 0 < chair.confidence <= 1
    ahead = InstanceTracker()
    ahead.next_id = 50
    ahead.restore(state)
    assert ahead.next_id == 50
    for bad in ({'version': 99, 'tracks': []}, {'version': 1}, {'version': 1, 'next_id': 1, 'tracks': [{'id': 1}]}):
        with pytest.raises(ValueError, match='tracker state'):
            InstanceTracker().restore(bad)


def test_a_segment_keeps_the_id_it_had_in_the_last_update_before_a_merged_instance_comes_back():
    """A small part inside a big instance scores half its overlap by containment: without matching the last
    update's instances first, the big segment would be handed to a merged instance that overlaps it half."""
    from gpt4scene_ros.objects.voxels import unpack_keys

    def part(keys, keep):
        kept = np.sort(keys[keep])
        return SegmentObservation(kept, fit_box(unpack_keys(kept) * 0.02 + 0.01, 0.02))

    table = blob(0, 0, size=10).voxel_keys
    grid = unpack_keys(table)
    left, right = grid[:, 0] < 5, grid[:, 0] >= 5
    small = (grid[:, 0] < 2) & (grid[:, 1] < 2) & (grid[:, 2] >= 8)  # a small part of the left half
    tracker = InstanceTracker()
    assert tracker.update([part(table, left), part(table, right)], 1.0) == [1, 2]
    assert tracker.update([part(table, np.ones(len(table), bool))], 2.0) == [1], 'the right half merged into 1'
    ids = tracker.update([part(table, ~small), part(table, small)], 3.0)
    assert ids == [1, 0], 'the table stays 1; the small part waits for confirmation'


def fitted(keys):
    """A segment of ``keys`` with the box fitted to its voxels (2 cm)."""
    from gpt4scene_ros.objects.voxels import unpack_keys

    keys = np.unique(keys)
    return SegmentObservation(keys, fit_box(unpack_keys(keys) * 0.02 + 0.01, 0.02))


def test_an_object_split_in_two_halves_keeps_its_id_on_the_half_with_its_box():
    """A bed segmented as frame and mattress: the mattress holds a few more voxels of the bed, the frame has the
    bed's box (its legs and headboard span it); the bed's ID stays on the frame, where a user sees the bed."""
    from gpt4scene_ros.objects.voxels import unpack_keys

    bed = fitted(blob(0, 0, size=20).voxel_keys)
    x, z = unpack_keys(bed.voxel_keys)[:, 0], unpack_keys(bed.voxel_keys)[:, 2]
    on_frame = (x < 2) | ((z < 10) & ((x >= 16) | (z < 2)))  # headboard, foot board, slats
    frame = fitted(bed.voxel_keys[on_frame])
    mattress = fitted(bed.voxel_keys[(z >= 10) & ~on_frame])
    assert len(mattress.voxel_keys) > len(frame.voxel_keys)
    tracker = InstanceTracker()
    assert tracker.update([bed], 1.0) == [1]
    assert tracker.update([mattress, frame], 2.0) == [0, 1], 'the frame keeps the ID, the mattress waits'


def test_parts_that_split_apart_again_get_the_ids_they_had_before_they_merged():
    """Chair 1 joins a part of chair 2 for an update (chair 2 matched only its other half), then all of it; when
    the two split, chair 1's ID stays with chair 1, although for two updates its instance held half of chair 2."""
    from gpt4scene_ros.objects.voxels import unpack_keys

    one, two = fitted(blob(0, 0, size=6).voxel_keys), fitted(blob(6, 0, size=7).voxel_keys)
    grid = unpack_keys(two.voxel_keys)
    near_half, far_half = two.voxel_keys[grid[:, 0] < 9], two.voxel_keys[grid[:, 0] >= 9]
    tracker = InstanceTracker()
    assert tracker.update([one, two], 1.0) == [1, 2]
    assert tracker.update([fitted(np.concatenate([one.voxel_keys, near_half])), fitted(far_half)], 2.0) == [1, 2]
    assert tracker.update([fitted(np.concatenate([one.voxel_keys, two.voxel_keys]))], 3.0) == [1]
    assert tracker.update([one, two], 4.0) == [1, 0], 'chair 1 keeps its ID; chair 2 comes back'
    assert tracker.update([one, two], 5.0) == [1, 2], 'with its own'


def test_a_join_of_two_instances_is_believed_only_when_successive_updates_have_it():
    """Geometric segmentation flickers between joining two touching chairs and not: the first update that joins
    them is parted by the instances' cells (new surface between them going to the nearer chair), the next one
    that still joins them merges them."""
    from gpt4scene_ros.objects.voxels import unpack_keys

    one, two = fitted(blob(0, 0, size=6).voxel_keys), fitted(blob(8, 0, size=6).voxel_keys)
    gap = fitted(blob(6, 0, size=2).voxel_keys)  # the surface between them, mapped with the join
    joined = fitted(np.concatenate([one.voxel_keys, gap.voxel_keys, two.voxel_keys]))
    tracker = InstanceTracker(merge_after_updates=2)
    for stamp in (1.0, 2.0):
        assert [len(p) for p in tracker.keep_apart([one.voxel_keys, two.voxel_keys])] == [1, 1]
        assert tracker.update([one, two], stamp) == [1, 2]
    parts = tracker.keep_apart([joined.voxel_keys])
    assert len(parts[0]) == 2, 'the first join is parted'
    x = unpack_keys(joined.voxel_keys)[:, 0]
    halves = [fitted(joined.voxel_keys[part]) for part in parts[0]]
    assert sorted(int(x[part].max()) for part in parts[0]) == [6, 13], 'the gap split between the nearer chairs'
    assert sorted(tracker.update(halves, 3.0)) == [1, 2]
    assert len(tracker.keep_apart([joined.voxel_keys])[0]) == 1, 'joined again: believed'
    assert tracker.update([joined], 4.0) == [1] and tracker.events['merged'] == 1
    fragment = fitted(blob(20, 0, size=2).voxel_keys)  # noise on the chair's border, a segment of its own
    chair = fitted(blob(14, 0, size=6).voxel_keys)
    tracker.update([joined, chair, fragment], 5.0)
    tracker.update([joined, chair, fragment], 6.0)
    with_fragment = np.concatenate([chair.voxel_keys, fragment.voxel_keys])
    assert [len(p) for p in tracker.keep_apart([joined.voxel_keys, with_fragment])] == [1, 1], 'at once'


def test_a_join_of_instances_seen_apart_for_long_takes_more_updates_to_believe():
    """Two chairs seen apart for six updates (a mapped room), then joined by a revisit's flicker: a join is
    believed after half as many successive updates as the two were seen apart (here three), parted before."""
    one, two = fitted(blob(0, 0, size=6).voxel_keys), fitted(blob(7, 0, size=6).voxel_keys)
    joined = fitted(np.concatenate([one.voxel_keys, two.voxel_keys]))
    tracker = InstanceTracker(merge_after_updates=2)
    for stamp in range(6):
        tracker.keep_apart([one.voxel_keys, two.voxel_keys])
        assert tracker.update([one, two], float(stamp)) == [1, 2]
    for stamp in (6.0, 7.0):
        parts = tracker.keep_apart([joined.voxel_keys])
        assert len(parts[0]) == 2, f'a join at {stamp} of two chairs seen apart six times is parted'
        assert sorted(tracker.update([fitted(joined.voxel_keys[p]) for p in parts[0]], stamp)) == [1, 2]
    assert len(tracker.keep_apart([joined.voxel_keys])[0]) == 1, 'the third successive join is believed'
    assert tracker.update([joined], 8.0) in ([1], [2]) and tracker.events['merged'] == 1  # equal chairs: a tie
    young = InstanceTracker(merge_after_updates=2)  # two parts seen apart twice: two joins are enough
    for stamp in (0.0, 1.0):
        young.keep_apart([one.voxel_keys, two.voxel_keys])
        young.update([one, two], stamp)
    assert len(young.keep_apart([joined.voxel_keys])[0]) == 2
    young.update([one, two], 2.0)
    assert len(young.keep_apart([joined.voxel_keys])[0]) == 1
    long_apart = InstanceTracker(merge_after_updates=2)  # at most three times merge_after_updates
    for stamp in range(40):
        long_apart.keep_apart([one.voxel_keys, two.voxel_keys])
        long_apart.update([one, two], float(stamp))
    joins = [len(long_apart.keep_apart([joined.voxel_keys])[0]) for _ in range(6)]
    assert joins == [2, 2, 2, 2, 2, 1], joins


def test_a_part_split_off_an_instance_seen_whole_for_long_waits_longer_for_its_id():
    """A table seen whole for eight updates: a part the segmentation splits off for three updates (a revisit's
    flicker) gets no ID; one split off for four (half as many as the updates the table was whole) gets one."""
    table, part = blob(0, 0, size=10), blob(10, 0, size=4)
    whole = merged(table, part)
    for split_for in (3, 4):
        tracker = InstanceTracker(merge_after_updates=2)
        for stamp in range(8):
            assert tracker.update([whole], float(stamp)) == [1]
        ids = [tracker.update([table, part], 8.0 + k) for k in range(split_for)]
        if split_for == 3:
            assert ids == [[1, 0]] * 3, ids
            assert tracker.update([whole], 11.0) == [1] and tracker.next_id == 2, 'a flicker costs no ID'
        else:
            assert ids == [[1, 0], [1, 0], [1, 0], [1, 2]], ids
    young = InstanceTracker(merge_after_updates=2)  # a part of an instance seen twice: the next update, as any
    young.update([whole], 0.0)
    young.update([whole], 1.0)
    assert young.update([table, part], 2.0) == [1, 0] and young.update([table, part], 3.0) == [1, 2]


def test_merge_after_updates_one_believes_every_join():
    one, two = fitted(blob(0, 0, size=6).voxel_keys), fitted(blob(8, 0, size=6).voxel_keys)
    joined = fitted(np.concatenate([one.voxel_keys, two.voxel_keys]))
    once = InstanceTracker()
    once.update([one, two], 1.0)
    once.update([one, two], 2.0)
    assert len(once.keep_apart([joined.voxel_keys])[0]) == 1, 'merge_after_updates=1: every join is believed'
    with pytest.raises(ValueError, match='merge_after_updates'):
        InstanceTracker(merge_after_updates=0)
