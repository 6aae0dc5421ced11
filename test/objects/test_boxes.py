"""Tests of gpt4scene_ros.objects.boxes: oriented boxes, fitting and IoU (checked against sampling)."""

import math

import numpy as np
import pytest

from gpt4scene_ros.objects.boxes import OrientedBox, box_iou, fit_box

VOXEL = 0.02


def box_surface_voxels(box: OrientedBox, voxel=VOXEL, rng=None):
    """Voxel-spaced points on the faces of ``box`` (what a map extracts from a box's surface)."""
    half = np.asarray(box.size) / 2
    axes = [np.arange(-h, h + 1e-9, voxel / 2) for h in half]
    faces = []
    for axis in range(3):
        others = [a for a in range(3) if a != axis]
        u, v = np.meshgrid(axes[others[0]], axes[others[1]], indexing='ij')
        for sign in (-1, 1):
            face = np.zeros((u.size, 3))
            face[:, others[0]], face[:, others[1]], face[:, axis] = u.ravel(), v.ravel(), sign * half[axis]
            faces.append(face)
    local = np.concatenate(faces)
    if rng is not None:
        local = local + rng.normal(0.0, 0.002, local.shape)
    return local @ box.rotation().T + box.center


def monte_carlo_iou(a, b, samples=400_000, seed=0):
    rng = np.random.default_rng(seed)
    corners = np.concatenate([a.corners(), b.corners()])
    lo, hi = corners.min(0), corners.max(0)
    points = rng.uniform(lo, hi, (samples, 3))
    in_a, in_b = a.contains(points), b.contains(points)
    return np.sum(in_a & in_b) / max(1, np.sum(in_a | in_b))


def test_box_validation_and_round_trip():
    box = OrientedBox((1, 2, 0.5), (0.4, 0.2, 1.0), 7.0)
    assert box.yaw == pytest.approx(7.0 - 2 * math.pi)
    assert OrientedBox.from_json(box.to_json()).to_json() == box.to_json()
    assert box.volume == pytest.approx(0.08)
    for bad in [
        dict(center=(0, 0), size=(1, 1, 1)),
        dict(center=(0, 0, math.nan), size=(1, 1, 1)),
        dict(center=(0, 0, 0), size=(1, -1, 1)),
        dict(center=(0, 0, 0), size=(1, 1, 1), yaw=math.inf),
    ]:
        with pytest.raises(ValueError, match='OrientedBox'):
            OrientedBox(**bad)
    with pytest.raises(ValueError, match='not a box record'):
        OrientedBox.from_json({'size': [1, 1, 1]})


@pytest.mark.parametrize('yaw_deg', [0.0, 17.0, -38.0, 44.0])
def test_fit_box_recovers_a_turned_box_from_its_surface(yaw_deg):
    truth = OrientedBox((0.7, -1.2, 0.3), (0.5, 0.3, 0.6), math.radians(yaw_deg))
    points = box_surface_voxels(truth, rng=np.random.default_rng(1))
    fitted = fit_box(points, VOXEL)
    assert math.degrees(math.remainder(fitted.yaw - truth.yaw, math.pi / 2)) == pytest.approx(0.0, abs=1.5)
    assert box_iou(fitted, truth) > 0.85
    assert np.all(fitted.contains(points, margin_m=1e-6)), 'the box holds its points'


def test_fit_box_keeps_axis_aligned_boxes_unturned_and_reaches_the_floor():
    truth = OrientedBox((0.0, 0.0, 0.2), (0.4, 0.3, 0.4), 0.0)
    points = box_surface_voxels(truth, rng=np.random.default_rng(2))
    seen = points[points[:, 2] > 0.03]  # the bottom (on the floor) is never observed
    fitted = fit_box(seen, VOXEL, floor_z=0.0)
    assert fitted.yaw == 0.0
    assert fitted.center[2] - fitted.size[2] / 2 == pytest.approx(0.0)
    floating = fit_box(seen + [0, 0, 0.3], VOXEL, floor_z=0.0)
    assert floating.center[2] - floating.size[2] / 2 > 0.3, 'an object well above the floor is not extended'
    with pytest.raises(ValueError):
        fit_box(np.zeros((0, 3)), VOXEL)
    single = fit_box([[1.0, 2.0, 3.0]], VOXEL)
    assert single.size == pytest.approx((VOXEL / 2, VOXEL / 2, VOXEL / 2))


@pytest.mark.parametrize(
    'a, b',
    [
        (OrientedBox((0, 0, 0), (1, 1, 1), 0.0), OrientedBox((0.5, 0, 0), (1, 1, 1), 0.0)),
        (OrientedBox((0, 0, 0), (1, 0.5, 1), 0.3), OrientedBox((0.2, 0.1, 0.2), (0.8, 0.6, 1.2), -0.4)),
        (OrientedBox((0, 0, 0), (2, 0.2, 1), math.pi / 4), OrientedBox((0, 0, 0), (2, 0.2, 1), -math.pi / 4)),
    ],
    ids=['shifted', 'turned', 'crossed'],
)
def test_box_iou_matches_sampling(a, b):
    assert box_iou(a, b) == pytest.approx(monte_carlo_iou(a, b), abs=0.01)
    assert box_iou(a, b) == pytest.approx(box_iou(b, a))


def test_box_iou_edge_cases():
    box = OrientedBox((1, 1, 1), (0.3, 0.2, 0.1), 0.7)
    assert box_iou(box, box) == pytest.approx(1.0, abs=1e-6)
    square = OrientedBox((0, 0, 0), (1, 1, 1), 0.0)
    assert box_iou(square, OrientedBox((0, 0, 0), (1, 1, 1), math.pi / 2)) == pytest.approx(1.0, abs=1e-6)
    assert box_iou(square, OrientedBox((3, 0, 0), (1, 1, 1), 0.0)) == 0.0
    assert box_iou(square, OrientedBox((0, 0, 2), (1, 1, 1), 0.0)) == 0.0
    flat = OrientedBox((0, 0, 0), (1, 1, 0.0), 0.0)
    assert box_iou(flat, flat) == 0.0
