"""Tests of gpt4scene_ros.objects.keyframes: depth-tested labels, the candidate pool and keyframe selection."""

from __future__ import annotations

import numpy as np
import pytest

from gpt4scene_ros.common.frames import CameraIntrinsics
from gpt4scene_ros.objects.keyframes import KeyframePool, VoxelLabels, label_view, make_view, select_keyframes
from gpt4scene_ros.objects.voxels import pack_keys

V = 0.02
INTRINSICS = CameraIntrinsics(160, 120, 140.0, 140.0, 79.5, 59.5)


def looking_down(x=0.0, y=0.0, height=1.0):
    T = np.eye(4)
    T[:3, :3] = np.diag([1.0, -1.0, -1.0])
    T[:3, 3] = (x, y, height)
    return T


def floor_labels(half=1.5, patch=((0.1, 0.3), (-0.2, 0.2)), patch_id=4):
    """Voxels of the plane z = 0, labelled 0, with a rectangle labelled ``patch_id``."""
    xs = np.arange(-half, half + 1e-9, V)
    gx, gy = np.meshgrid(xs, xs, indexing='ij')
    points = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], axis=1)
    keys = pack_keys(np.rint(points / V))
    (x0, x1), (y0, y1) = patch
    inside = (points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)
    order = np.argsort(keys)
    return VoxelLabels(keys[order], np.where(inside, patch_id, 0)[order], np.tile([0.0, 0.0, 1.0], (len(keys), 1)), V)


def plane_view(T, index=0, stamp=0.0, depth_offset=0.0):
    depth = np.full((INTRINSICS.height, INTRINSICS.width), T[2, 3] + depth_offset, np.float32)
    color = np.zeros((INTRINSICS.height, INTRINSICS.width, 3), np.uint8)
    return make_view(color, depth, INTRINSICS, T, stamp, index, view_width_px=80)


def test_make_view_keeps_every_nth_depth_pixel_and_checks_its_input():
    view = plane_view(looking_down())
    assert view.depth_m.shape == (60, 80) and view.depth_step == 2
    rows, cols, camera = view.pixel_rays()
    assert len(rows) == 60 * 80
    # Reduced pixel (r, c) is full-resolution pixel (2r, 2c): its ray goes through that pixel.
    k = np.flatnonzero((rows == 10) & (cols == 20))[0]
    u = camera[k, 0] / camera[k, 2] * INTRINSICS.fx + INTRINSICS.cx
    assert u == pytest.approx(40.0)
    with pytest.raises(ValueError, match='disagree'):
        make_view(np.zeros((120, 160, 3), np.uint8), np.zeros((60, 80), np.float32), INTRINSICS, np.eye(4), 0, 0)
    with pytest.raises(ValueError, match='T_map_camera'):
        make_view(
            np.zeros((120, 160, 3), np.uint8), np.zeros((120, 160), np.float32), INTRINSICS, np.zeros((4, 4)), 0, 0
        )


def test_labels_are_the_visible_part_and_a_pose_far_off_is_rejected():
    table = floor_labels()
    good = label_view(plane_view(looking_down()), table)
    assert good.surface_agreement > 0.99
    assert 4 in good.visible_px and set(good.visible_px) == {4}
    # The patch is 0.2 m x 0.4 m seen from 1 m: about 28 x 56 full-resolution pixels.
    assert 1000 < good.visible_px[4] < 2200
    shifted = label_view(plane_view(looking_down(), depth_offset=0.4), table)  # the depth says 1.4 m: off the map
    assert shifted.surface_agreement < 0.05 and not shifted.visible_px
    # One voxel in front of the surface still finds it (normal-axis neighbours).
    near = label_view(plane_view(looking_down(), depth_offset=-0.018), table)
    assert near.surface_agreement > 0.9


def test_pool_stays_bounded_and_spread_in_time():
    pool = KeyframePool(5)
    for k in range(40):
        pool.add(plane_view(looking_down(x=0.01 * k), index=k, stamp=float(k)))
    stamps = [v.stamp_s for v in pool.views]
    assert len(pool) == 5 and stamps[0] == 0.0 and stamps[-1] == 39.0
    assert max(np.diff(stamps)) <= 3 * min(np.diff(stamps)), f'spread evenly: {stamps}'
    pool.clear()
    assert len(pool) == 0
    with pytest.raises(ValueError):
        KeyframePool(1)


def test_coverage_selection_shows_every_instance_and_uniform_samples_in_time():
    views = [plane_view(looking_down(x=0.2 * k), index=k, stamp=float(k)) for k in range(10)]
    visible = [{1: 900}, {1: 900, 2: 50}, {1: 800}, {3: 1200}, {1: 700}, None, {1: 900}, {2: 600}, {1: 800}, {1: 900}]
    chosen = select_keyframes(views, visible, 3, 'coverage', min_visible_px=400)
    assert len(chosen) == 3 and {3, 7} <= set(chosen), 'the only views of instances 3 and 2'
    every = select_keyframes(views, visible, 9, 'coverage', min_visible_px=400)
    assert 5 not in every, 'a view off the map is never chosen'
    assert every[:3] == chosen, 'ranked: the first three of nine are the choice of three'
    assert sorted(select_keyframes(views, visible, 4, 'uniform')) == [0, 3, 6, 9]
    ranked = select_keyframes(views, visible, 10, 'uniform')
    assert sorted(ranked) == list(range(10)) and sorted(ranked[:2]) == [4, 9] and sorted(ranked[:3]) == [0, 4, 9]
    assert select_keyframes(views, visible, 1, 'uniform') == [5]
    assert select_keyframes([], [], 8, 'coverage') == []
    assert len(select_keyframes(views, visible, 50, 'coverage')) == 9
    with pytest.raises(ValueError, match='selection'):
        select_keyframes(views, visible, 2, 'random')
