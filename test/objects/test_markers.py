"""Tests of gpt4scene_ros.objects.markers: placement on the most interior pixel, layout and drawing."""

from __future__ import annotations

import numpy as np
import pytest

from gpt4scene_ros.objects.markers import (
    REFERENCE_SIDE_PX,
    Marker,
    MarkerStyle,
    draw_markers,
    layout_markers,
    marker_color,
    marker_radii,
    place_marker,
    place_markers,
    scale_markers,
)


def test_marker_sits_on_the_most_interior_pixel_of_the_mask():
    mask = np.zeros((60, 80), bool)
    mask[10:50, 10:20] = True  # an L: the vertical bar is the thicker part
    mask[40:50, 10:70] = True
    u, v, area = place_marker(mask)
    assert mask[int(v), int(u)] and area == mask.sum()
    assert 10 <= u < 20, 'inside the thick bar, not at the centroid (which is off the mask)'
    disc = np.hypot(*np.meshgrid(np.arange(41) - 20, np.arange(41) - 20)) <= 15
    assert place_marker(disc)[:2] == (20.0, 20.0)
    assert place_marker(np.zeros((5, 5), bool)) is None
    ring = disc & ~(np.hypot(*np.meshgrid(np.arange(41) - 20, np.arange(41) - 20)) <= 8)
    u, v, _ = place_marker(ring)
    assert ring[int(v), int(u)], 'a marker never falls into a hole'


def test_place_markers_one_per_instance_largest_first_with_a_minimum_area():
    labels = np.zeros((50, 50), int)
    labels[5:25, 5:25] = 3
    labels[30:34, 30:34] = 8
    labels[40:48, 2:30] = 5
    markers = place_markers(labels)
    assert [m.id for m in markers] == [3, 5, 8]
    assert all(labels[int(m.v), int(m.u)] == m.id for m in markers)
    assert [m.id for m in place_markers(labels, min_area_px=20)] == [3, 5]
    assert [m.id for m in place_markers(labels, ids=[8, 99])] == [8]


def test_layout_pushes_overlapping_markers_apart_and_keeps_them_in_the_image():
    style = MarkerStyle(radius_px=20)
    markers = [Marker(1, 100, 100), Marker(2, 105, 100), Marker(3, 100, 108), Marker(4, 2, 2)]
    laid = layout_markers(markers, (REFERENCE_SIDE_PX, REFERENCE_SIDE_PX), style)
    centres = np.array([[m.u, m.v] for m, _ in laid])
    radii = np.array([r for _, r in laid])
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.hypot(*(centres[i] - centres[j])) >= radii[i] + radii[j] - 1e-6, 'markers do not cover each other'
    assert np.all(np.hypot(*(centres[:3] - [100, 100]).T) <= 2 * 20 + 10), 'they stay near their objects'
    assert laid[3][0].u >= radii[3] and laid[3][0].v >= radii[3], 'inside the image'
    assert np.all(radii >= style.min_scale * 20 - 1e-9)


def test_drawing_is_pure_scaled_to_the_image_and_uses_the_id_colour():
    image = np.full((384, 512, 3), 90, np.uint8)
    before = image.copy()
    marked = draw_markers(image, [Marker(7, 200.0, 150.0)], MarkerStyle(radius_px=20))
    np.testing.assert_array_equal(image, before)
    changed = np.any(marked != image, axis=2)
    rows, cols = np.nonzero(changed)
    assert 36 <= rows.max() - rows.min() + 1 <= 48 and 36 <= cols.max() - cols.min() + 1 <= 48, 'a 40 px disc'
    # Away from the digits, the disc has the id's colour.
    assert np.abs(marked[150, 185].astype(int) - marker_color(7)).max() <= 2
    big = draw_markers(np.full((768, 1024, 3), 90, np.uint8), [Marker(7, 400.0, 300.0)], MarkerStyle(radius_px=20))
    rows, _ = np.nonzero(np.any(big != 90, axis=2))
    assert 72 <= rows.max() - rows.min() + 1 <= 96, 'twice the image, twice the marker'
    assert marker_color(3) != marker_color(4)
    with pytest.raises(ValueError, match='HxWx3 uint8'):
        draw_markers(np.zeros((10, 10), np.uint8), [])
    with pytest.raises(ValueError, match='radius_px'):
        MarkerStyle(radius_px=0)


def test_scale_markers_keeps_pixel_centres():
    (scaled,) = scale_markers([Marker(1, 0.0, 9.0, 40)], 0.5)
    assert (scaled.u, scaled.v, scaled.visible_px) == (-0.25, 4.25, 10), 'the visible area scales with the image'
    assert Marker(4, 1.25, 2.5, 10).to_json() == {'id': 4, 'pixel': [1.2, 2.5], 'visible_px': 10}


def test_marker_size_follows_the_objects_and_a_crowded_image_keeps_most_of_the_room_in_sight():
    style = MarkerStyle()
    rng = np.random.default_rng(0)
    # 52 objects on a 512x289 BEV (the real kitchen's count): the markers cover at most max_cover of it.
    crowd = [Marker(i, float(rng.uniform(0, 511)), float(rng.uniform(0, 288)), 2000) for i in range(1, 53)]
    radii = marker_radii(crowd, (289, 512), style)
    assert np.pi * np.sum(radii**2) <= style.max_cover * 512 * 289 + 1e-6
    assert radii.min() >= style.min_radius_px
    # Few objects: a large one gets the full size, a small one a disc that leaves most of it in sight.
    big, small = Marker(1, 100.0, 100.0, 20000), Marker(2, 300.0, 100.0, 900)
    radius_big, radius_small = marker_radii([big, small], (400, 512), style)
    assert radius_big == style.radius_px
    assert np.pi * radius_small**2 <= 0.4 * 900 and radius_small >= style.min_radius_px
    # Drawn: the crowded BEV keeps most of its pixels.
    image = np.full((289, 512, 3), 90, np.uint8)
    drawn = draw_markers(image, crowd, style)
    assert np.mean(np.any(drawn != 90, axis=2)) <= style.max_cover + 0.03
    with pytest.raises(ValueError, match='max_cover'):
        MarkerStyle(max_cover=0.0)
