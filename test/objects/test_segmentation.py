"""Tests of gpt4scene_ros.objects.segmentation on hand-built surfaces (points with normals and colours, as the TSDF
extracts them), and of the image-boundary votes on a rendered view."""

from __future__ import annotations

import numpy as np
import pytest

from gpt4scene_ros.common.frames import CameraIntrinsics
from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.objects.boxes import OrientedBox, box_iou, fit_box
from gpt4scene_ros.objects.keyframes import make_view
from gpt4scene_ros.objects.segmentation.colors import shading_invariant_colors
from gpt4scene_ros.objects.segmentation.structure import find_structure
from gpt4scene_ros.objects.segmentation.surface import segment_surface
from gpt4scene_ros.objects.segmentation.votes import BoundaryVotes
from gpt4scene_ros.objects.voxels import pack_keys, surface_voxels, unpack_keys

V = 0.02
CONFIG = InstanceConfig()


class Surface:
    """Points on axis-aligned faces, one per voxel, with outward normals and a colour per part.

    Faces lie on multiples of the voxel size, as the surface points Open3D extracts from a TSDF do.
    """

    def __init__(self):
        self.points, self.normals, self.colors = [], [], []

    def face(self, lo, hi, axis, sign, color):
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        others = [a for a in range(3) if a != axis]
        grids = [np.arange(lo[a], hi[a] + 1e-9, V) for a in others]
        u, w = np.meshgrid(*grids, indexing='ij')
        points = np.zeros((u.size, 3))
        points[:, others[0]], points[:, others[1]] = u.ravel(), w.ravel()
        points[:, axis] = hi[axis] if sign > 0 else lo[axis]
        normal = np.zeros(3)
        normal[axis] = sign
        self.points.append(points)
        self.normals.append(np.repeat(normal[None], len(points), axis=0))
        self.colors.append(np.repeat(np.array(color, np.uint8)[None], len(points), axis=0))
        return self

    def box(self, lo, hi, color, bottom=False):
        """The visible faces of a box standing on something: four sides and the top."""
        for axis in range(3):
            for sign in (-1, 1):
                if axis == 2 and sign < 0 and not bottom:
                    continue
                self.face(lo, hi, axis, sign, color)
        return self

    def floor(self, half_x=2.0, half_y=2.0, color=(120, 100, 80)):
        return self.face((-half_x, -half_y, 0.0), (half_x, half_y, 0.0), 2, 1, color)

    def paint(self, lo, hi, color):
        """Recolour the points inside the box (lo, hi): a flat object lying on a surface."""
        for points, colors in zip(self.points, self.colors):
            inside = np.all((points >= np.asarray(lo) - 1e-9) & (points <= np.asarray(hi) + 1e-9), axis=1)
            colors[inside] = color
        return self

    def voxels(self):
        return surface_voxels(np.concatenate(self.points), np.concatenate(self.colors), np.concatenate(self.normals), V)


def segments(surface, config=CONFIG, votes=None):
    segmentation = segment_surface(surface.voxels(), config, votes)
    boxes = [fit_box(segmentation.voxels.points[m], V, floor_z=0.0) for m in segmentation.members()]
    return segmentation, boxes


def best_iou(boxes, truth: OrientedBox) -> float:
    return max((box_iou(b, truth) for b in boxes), default=0.0)


def test_keys_pack_and_surface_voxels_merge_points_per_voxel():
    keys = np.array([[0, 0, 0], [-5, 7, 1 << 19], [(1 << 20) - 1, -(1 << 20), 3]])
    np.testing.assert_array_equal(unpack_keys(pack_keys(keys)), keys)
    # Open3D puts surface points at multiples of the voxel size, plus rounding noise: they must not split.
    points = np.array([[0.0, 0.0, 0.0], [0.02 - 1e-7, 0.0, 0.0], [0.02 + 1e-7, 0.0, 0.0], [0.04, 0.0, 0.0]])
    normals = np.tile([0.0, 0.0, 2.0], (4, 1))
    colors = np.array([[10, 10, 10], [100, 0, 0], [200, 0, 0], [0, 0, 50]], np.uint8)
    voxels = surface_voxels(points, colors, normals, V)
    assert len(voxels) == 3
    np.testing.assert_array_equal(voxels.colors[1], [150, 0, 0])
    np.testing.assert_allclose(np.linalg.norm(voxels.normals, axis=1), 1.0)
    assert sorted(map(tuple, voxels.edges.tolist())) == [(0, 1), (1, 2)]
    with pytest.raises(ValueError, match='surface_voxels'):
        surface_voxels(points, colors[:2], normals, V)
    # A flat 10 x 10 patch: every inner voxel has its 8 in-plane neighbours.
    flat = Surface().face((0, 0, 0), (0.18, 0.18, 0), 2, 1, (0, 0, 0)).voxels()
    degree = np.bincount(flat.edges.ravel(), minlength=len(flat))
    assert len(flat) == 100 and degree.max() == 8 and len(flat.edges) == 2 * 9 * 10 + 2 * 9 * 9


def test_structure_is_the_floor_and_the_walls_not_the_furniture():
    surface = Surface().floor()
    for x in (-2.0, 2.0):
        surface.face((x, -2.0, 0.0), (x, 2.0, 2.4), 0, -1 if x > 0 else 1, (200, 200, 190))
    surface.box((0.2, 0.2, 0.0), (0.7, 0.6, 0.5), (30, 160, 60))
    surface.face((-0.5, -1.0, 0.0), (-0.5, 0.0, 0.9), 0, 1, (30, 30, 200))  # a cabinet front: not a wall
    voxels = surface.voxels()
    structure = find_structure(voxels, CONFIG)
    points = voxels.points
    on_floor = points[:, 2] < 0.005
    on_wall = np.abs(np.abs(points[:, 0]) - 2.0) < 0.005
    furniture = (points[:, 2] > 0.05) & ~on_wall
    assert structure.floor[on_floor & ~on_wall].mean() > 0.99
    assert structure.walls[on_wall & (points[:, 2] > 0.05)].mean() > 0.99
    assert not structure.mask[furniture].any()
    assert len(structure.wall_planes) == 2
    np.testing.assert_allclose(np.median(structure.floor_height_m), 0.0, atol=0.01)


def test_objects_apart_each_get_a_segment_and_a_tight_box():
    truth = [
        OrientedBox((0.45, 0.4, 0.25), (0.5, 0.4, 0.5)),
        OrientedBox((-0.8, 0.3, 0.16), (0.32, 0.32, 0.32)),
        OrientedBox((0.6, -1.0, 0.4), (0.2, 0.6, 0.8)),
    ]
    surface = Surface().floor()
    for k, box in enumerate(truth):
        lo, hi = np.subtract(box.center, np.divide(box.size, 2)), np.add(box.center, np.divide(box.size, 2))
        surface.box(lo, hi, [(200, 40, 40), (40, 200, 40), (40, 40, 200)][k])
    segmentation, boxes = segments(surface)
    assert segmentation.count == 3
    assert all(best_iou(boxes, box) > 0.8 for box in truth)


def test_an_object_on_a_table_of_its_own_colour_is_split_off_its_support():
    color = (150, 120, 90)
    surface = Surface().floor(color=(90, 90, 90))
    surface.box((-0.6, -0.4, 0.68), (0.6, 0.4, 0.72), color, bottom=True)  # table top slab, seen from below too
    for x in (-0.56, 0.52):
        for y in (-0.36, 0.32):
            surface.box((x, y, 0.0), (x + 0.04, y + 0.04, 0.68), color)  # legs
    surface.box((0.1, 0.0, 0.72), (0.3, 0.2, 0.9), color)  # a box on it, same colour
    segmentation, boxes = segments(surface)
    assert segmentation.count == 2
    assert best_iou(boxes, OrientedBox((0.2, 0.1, 0.81), (0.2, 0.2, 0.18))) > 0.6
    assert best_iou(boxes, OrientedBox((0.0, 0.0, 0.36), (1.2, 0.8, 0.72))) > 0.7


def test_touching_boxes_of_different_colours_and_a_flat_magazine_come_apart():
    surface = Surface().floor()
    # Two boxes touching along x = 0.4: their contact faces are hidden, so only what a camera sees is built.
    red, blue = (200, 60, 60), (60, 60, 200)
    surface.face((0.0, 0.0, 0.0), (0.4, 0.3, 0.36), 0, -1, red).face((0.0, 0.0, 0.0), (0.4, 0.3, 0.36), 1, -1, red)
    surface.face((0.0, 0.0, 0.0), (0.4, 0.3, 0.36), 1, 1, red).face((0.0, 0.0, 0.0), (0.4, 0.3, 0.36), 2, 1, red)
    surface.face((0.0, 0.0, 0.28), (0.4, 0.3, 0.36), 0, 1, red)  # above the blue box
    surface.face((0.0, 0.0, 0.0), (0.4, 0.06, 0.26), 0, 1, red)  # beside it
    surface.face((0.4, 0.06, 0.0), (0.7, 0.3, 0.26), 0, 1, blue).face((0.4, 0.06, 0.0), (0.7, 0.3, 0.26), 1, -1, blue)
    surface.face((0.4, 0.06, 0.0), (0.7, 0.3, 0.26), 1, 1, blue).face((0.4, 0.06, 0.0), (0.7, 0.3, 0.26), 2, 1, blue)
    surface.box((-1.0, -1.0, 0.0), (-0.2, -0.5, 0.7), (230, 230, 230))  # a white slab (table)
    surface.paint((-0.8, -0.9, 0.7), (-0.5, -0.7, 0.7), (180, 20, 160))  # a magazine lying on it
    voxels = surface.voxels()
    segmentation, boxes = segments(surface)
    assert best_iou(boxes, OrientedBox((0.2, 0.15, 0.18), (0.4, 0.3, 0.36))) > 0.6
    assert best_iou(boxes, OrientedBox((0.55, 0.18, 0.13), (0.3, 0.24, 0.26))) > 0.5
    magazine = np.all(np.abs(voxels.points[:, :2] - (-0.65, -0.8)) < (0.13, 0.08), axis=1) & (
        voxels.points[:, 2] > 0.69
    )
    labels = segmentation.labels[magazine]
    assert (labels >= 0).all() and len(set(labels.tolist())) == 1, 'the magazine is one segment'
    table = segmentation.labels[(np.abs(voxels.points[:, 0] + 0.3) < 0.05) & (voxels.points[:, 2] > 0.69)]
    assert set(labels.tolist()).isdisjoint(table.tolist()), 'and not the table'


def test_empty_map_floor_only_and_sheets_on_the_floor_give_no_segments():
    empty = segment_surface(surface_voxels(np.zeros((0, 3)), np.zeros((0, 3), np.uint8), np.zeros((0, 3)), V), CONFIG)
    assert empty.count == 0 and empty.members() == []
    floor_only = Surface().floor()
    assert segments(floor_only)[0].count == 0
    with_rug = Surface().floor().paint((-0.5, -0.5, 0.0), (0.5, 0.5, 0.0), (200, 0, 0))
    assert segments(with_rug)[0].count == 0, 'a sheet lying on the floor is floor'


def test_shading_invariant_colours_ignore_brightness_but_not_black_and_white():
    base = np.array([[180, 60, 40]])
    shaded = shading_invariant_colors(np.vstack([base, base // 2, [[250, 250, 250]], [[20, 20, 20]]]))
    assert np.linalg.norm(shaded[0] - shaded[1]) < 10
    assert np.linalg.norm(shaded[2] - shaded[3]) > 13
    assert np.linalg.norm(shaded[0] - shading_invariant_colors([[40, 60, 180]])[0]) > 40


def test_boundary_votes_mark_an_image_edge_in_the_map():
    """A camera looks straight down at a plane whose left half is red and right half blue: the voxels along
    the colour border collect boundary votes in every frame, the others almost none."""
    intrinsics = CameraIntrinsics(160, 120, 150.0, 150.0, 79.5, 59.5)
    votes = BoundaryVotes(CONFIG, V)
    for dx in (0.0, 0.03, -0.02):
        T = np.eye(4)
        T[:3, :3] = np.diag([1.0, -1.0, -1.0])  # optical z points down at the plane z = 0
        T[:3, 3] = (dx, 0.0, 1.0)
        u = np.arange(160)
        x_on_plane = (u - intrinsics.cx) / intrinsics.fx * 1.0 + dx
        color = np.zeros((120, 160, 3), np.uint8)
        color[:, x_on_plane < 0.0] = (220, 30, 30)
        color[:, x_on_plane >= 0.0] = (30, 30, 220)
        depth = np.full((120, 160), 1.0, np.float32)
        votes.add_view(make_view(color, depth, intrinsics, T, 0.0, 0, view_width_px=160))
    assert votes.frames == 3
    xs = np.arange(-0.3, 0.31, V)
    keys = pack_keys(np.stack([np.rint(xs / V), np.zeros_like(xs), np.zeros_like(xs)], axis=1))
    fraction = votes.boundary_fraction(keys)
    border = np.abs(xs) < 0.025
    assert fraction[border].max() > 0.6
    assert fraction[np.abs(xs) > 0.1].max() < 0.2
    state = votes.state()
    again = BoundaryVotes(CONFIG, V)
    again.restore(state)
    np.testing.assert_array_equal(again.boundary_fraction(keys), fraction)
    for bad in (
        {'vote_keys': state['vote_keys']},
        {**state, 'vote_seen': state['vote_seen'][:-1]},
        {**state, 'vote_keys': state['vote_keys'][::-1].copy()},
        {**state, 'vote_boundary': state['vote_seen'] + 1},
    ):
        with pytest.raises(ValueError, match='boundary votes'):
            again.restore(bad)
    np.testing.assert_array_equal(again.boundary_fraction(keys), fraction), 'a refused restore changes nothing'
    votes.clear()
    assert len(votes) == 0 and votes.boundary_fraction(keys).max() == 0.0


def test_a_curtain_of_flying_pixels_along_a_wall_is_structure_but_a_screen_on_it_is_not():
    from gpt4scene_ros.objects.segmentation.structure import Structure, is_structure_remnant

    v = 0.02
    count = 400
    wall = Structure(
        np.zeros(count, bool), np.zeros(count, bool), np.zeros(count, bool), np.zeros(count), (((-1.0, 0.0), -2.5),)
    )  # the wall x = 2.5, its normal into the room (distances inside are positive)
    rng = np.random.default_rng(0)
    # A sheet 4 cm thick, 2-6 cm in front of the wall x = 2.5, 0.8 m along it and 0.5 m tall.
    points = np.stack(
        [2.5 - rng.uniform(0.02, 0.06, count), rng.uniform(-0.4, 0.4, count), rng.uniform(0.1, 0.6, count)], axis=1
    )
    up = np.tile([0.0, 0.0, 1.0], (count, 1))  # flying pixels: normals anywhere but out of the wall
    out = np.tile([-1.0, 0.0, 0.0], (count, 1))  # a screen faces into the room
    floor = np.zeros(count)
    assert is_structure_remnant(points, wall, v, floor, up)
    assert not is_structure_remnant(points, wall, v, floor, out)
    assert not is_structure_remnant(points - [0.3, 0.0, 0.0], wall, v, floor, up), 'away from the wall: an object'
    # Flat, facing up, reaching 9 cm into the room (the smeared top edge of a sofa's back against the wall) is
    # structure too; a book 15 cm deep lying against the wall is not.
    flat = np.tile([0.0, 0.0, 1.0], (count, 1))
    sliver = np.stack(
        [2.5 - rng.uniform(0.0, 0.09, count), rng.uniform(-0.6, 0.6, count), rng.uniform(0.86, 0.88, count)], 1
    )
    assert is_structure_remnant(sliver, wall, v, floor, flat)
    book = np.stack(
        [2.5 - rng.uniform(0.0, 0.15, count), rng.uniform(-0.1, 0.1, count), rng.uniform(0.86, 0.88, count)], 1
    )
    assert not is_structure_remnant(book, wall, v, floor, flat)
    # A flat strip of ceiling at 2.6 m that the ceiling search left (it is sparse at the room's edge) is
    # structure; a table top, flat too, at 0.75 m is not, nor a box reaching 2.1 m.
    strip = np.stack([rng.uniform(0.0, 2.0, count), rng.uniform(1.0, 1.3, count), rng.uniform(2.6, 2.61, count)], 1)
    assert is_structure_remnant(strip, wall, v, floor, -up)
    assert not is_structure_remnant(strip - [0.0, 0.0, 1.85], wall, v, floor, up), 'a table top'
    box = strip.copy()
    box[:, 2] = rng.uniform(1.6, 2.1, count)
    assert not is_structure_remnant(box, wall, v, floor, out)


def test_a_seat_cushion_joins_its_chair_but_a_magazine_and_a_table_top_over_a_chair_stay_apart():
    from gpt4scene_ros.objects.segmentation.regions import merge_covering_slabs

    v = 0.02
    boxes = {  # label: (min xyz, max xyz)
        0: ((0.0, 0.0, 0.0), (0.46, 0.46, 0.9)),  # a chair's frame, back and legs
        1: ((0.04, 0.04, 0.44), (0.42, 0.42, 0.48)),  # its cushion (another colour): a slab covering it
        2: ((1.0, 0.0, 0.0), (2.4, 0.8, 0.74)),  # a table
        3: ((1.2, 0.2, 0.76), (1.5, 0.4, 0.78)),  # a magazine on it
        4: ((3.0, 0.0, 0.72), (4.4, 0.8, 0.76)),  # a table top on its own (legs apart) ...
        5: ((3.9, 0.5, 0.0), (4.36, 0.96, 0.9)),  # ... over a chair tucked under it
    }
    points, truth = [], []
    for label, (low, high) in boxes.items():
        axes = [np.arange(lo, hi + 1e-9, v) for lo, hi in zip(low, high)]
        grid = np.stack(np.meshgrid(*axes, indexing='ij'), axis=-1).reshape(-1, 3)
        points.append(grid)
        truth.append(np.full(len(grid), label))
    points, truth = np.concatenate(points), np.concatenate(truth)
    voxels = surface_voxels(points, np.full((len(points), 3), 128.0), np.tile([0.0, 0.0, 1.0], (len(points), 1)), v)
    # Each voxel's label: the last box it lies in (the cushion, the magazine, the chair over the frame it shares).
    keys = pack_keys(np.rint(points / v))
    order = np.argsort(keys, kind='stable')
    last = np.searchsorted(keys[order], voxels.keys, side='right') - 1
    labels = truth[order][last]
    merged = merge_covering_slabs(labels, voxels)
    group = {label: set(np.unique(merged[labels == label]).tolist()) for label in boxes}
    assert group[1] == group[0], 'the cushion joins its chair'
    assert group[3] != group[2], 'the magazine stays apart from its table'
    assert group[4] != group[5], 'the table top stays apart from the chair under it'


def test_thin_parts_inside_a_larger_segment_join_it_but_what_lies_or_stands_on_a_top_stays_apart():
    from gpt4scene_ros.objects.segmentation.regions import merge_enclosed_parts

    v = 0.02

    def solid(low, high, yaw_deg=0.0, about=(0.0, 0.0)):
        axes = [np.arange(lo, hi + 1e-9, v) for lo, hi in zip(low, high)]
        grid = np.stack(np.meshgrid(*axes, indexing='ij'), axis=-1).reshape(-1, 3)
        c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
        xy = grid[:, :2] - about
        grid[:, :2] = np.stack([c * xy[:, 0] - s * xy[:, 1], s * xy[:, 0] + c * xy[:, 1]], axis=1) + about
        return grid

    chair = dict(yaw_deg=45.0, about=(0.25, 0.25))  # turned, so its back is thin only along its own axes
    legs = [solid((x, y, 0.0), (x + 0.04, y + 0.04, 0.4), **chair) for x in (0, 0.46) for y in (0, 0.46)]
    posts = [solid((x, 0.44, 0.46), (x + 0.04, 0.48, 0.9), **chair) for x in (0, 0.46)]
    parts = {  # label: points
        0: np.concatenate([solid((0.0, 0.0, 0.4), (0.5, 0.5, 0.46), **chair), *legs, *posts]),  # a chair
        1: solid((0.06, 0.44, 0.5), (0.44, 0.48, 0.88), **chair),  # its back panel, cut off between the posts
        2: solid((1.0, 0.0, 0.0), (2.4, 0.8, 0.74)),  # a table
        3: solid((1.2, 0.2, 0.74), (1.5, 0.4, 0.74)),  # a magazine lying on it: in the top's own voxel layer
        5: solid((1.3, 0.3, 0.0), (1.6, 0.6, 0.3)),  # a box under it (not thin)
        6: solid((3.0, 0.0, 0.0), (3.8, 0.4, 0.8)),  # a cabinet ...
        7: solid((3.0, 0.36, 0.6), (3.8, 0.4, 0.8)),  # ... and its back rim, cut off by depth noise
        8: solid((3.04, 0.04, 0.4), (3.76, 0.36, 0.42)),  # ... and a shelf board inside it
        9: solid((3.76, 0.1, 0.6), (3.82, 0.3, 0.62)),  # ... and a piece of its side that flying pixels smear
    }  # a voxel out of its box (an armrest's top against a wall)
    points = np.concatenate(list(parts.values()))
    truth = np.concatenate([np.full(len(p), label) for label, p in parts.items()])
    voxels = surface_voxels(points, np.full((len(points), 3), 128.0), np.tile([0.0, 0.0, 1.0], (len(points), 1)), v)
    keys = pack_keys(np.rint(points / v))
    order = np.argsort(keys, kind='stable')
    labels = truth[order][np.searchsorted(keys[order], voxels.keys, side='right') - 1]
    merged = merge_enclosed_parts(labels, voxels)
    group = {label: set(np.unique(merged[labels == label]).tolist()) for label in parts}
    assert group[1] == group[0], 'the turned chair back joins its chair'
    assert group[7] == group[6] and group[8] == group[6], 'the rim and the shelf board join their cabinet'
    assert group[9] == group[6], "a piece reaching a voxel out of its holder's box joins it"
    for label, what in ((3, 'the magazine'), (5, 'the box under the table')):
        assert group[label] != group[2], f'{what} stays apart from the table'
        assert len(group[label]) == 1


def test_a_book_on_a_table_stays_apart_when_the_tables_box_has_grown_but_a_strip_of_a_mattress_joins_its_bed():
    """What earlier stages merged into a table (here a vase on it) raises its box's top, so a book lying on the
    table fits under that top like a shelf board in its cabinet: the table's surface around the book, below it, tells
    them apart. A strip of a mattress's top (cut off along its edge) has the mattress around it at its own height."""
    from gpt4scene_ros.objects.segmentation.regions import merge_enclosed_parts

    wood = (150, 110, 70)
    boxes = {  # label: boxes (their visible faces); a later box owns the voxels it shares with an earlier one
        0: [((0.0, 0.0, 0.0), (1.4, 0.8, 0.74)), ((1.2, 0.5, 0.74), (1.3, 0.6, 1.1))],  # a table, a vase merged in
        1: [((0.2, 0.2, 0.76), (0.44, 0.36, 0.80))],  # a book lying on it (the layer they meet in is the table's)
        2: [((2.0, 0.0, 0.0), (3.0, 2.0, 0.5)), ((2.0, -0.06, 0.0), (3.0, 0.0, 0.96))],  # a bed, its headboard
    }
    surface = Surface()
    for part_boxes in boxes.values():
        for lo, hi in part_boxes:
            surface.box(lo, hi, wood)
    voxels = surface.voxels()
    labels = np.full(len(voxels), -1)
    for label, part_boxes in boxes.items():
        for lo, hi in part_boxes:
            labels[np.all((voxels.points >= np.add(lo, -1e-6)) & (voxels.points <= np.add(hi, 1e-6)), axis=1)] = label
    strip = (np.abs(voxels.points[:, 2] - 0.5) < 1e-6) & (voxels.points[:, 0] < 2.09) & (labels == 2)
    strip &= (voxels.points[:, 1] > 0.19) & (voxels.points[:, 1] < 1.81)
    labels[strip] = 3
    merged = merge_enclosed_parts(labels, voxels)
    book = set(merged[labels == 1].tolist())
    assert len(book) == 1 and book != {merged[labels == 0][0]}, 'the book stays whole and apart from the table'
    assert np.all(merged[labels == 3] == merged[labels == 2][0]), 'the strip of the mattress joins its bed'


def test_a_stack_of_two_books_is_split_in_two_but_a_single_book_with_rounded_edges_is_not():
    from gpt4scene_ros.objects.segmentation.resting import split_stacked

    paper = (220, 220, 210)
    surface = Surface().box((0.0, 0.0, 0.0), (1.4, 0.8, 0.74), (150, 110, 70))  # the table
    surface.box((0.2, 0.2, 0.76), (0.44, 0.38, 0.80), paper)  # the lower book ...
    surface.box((0.24, 0.22, 0.80), (0.40, 0.34, 0.82), paper)  # ... and the upper one, a cell from one edge
    surface.box((0.2, 0.5, 0.76), (0.44, 0.68, 0.80), paper)  # the same stack again, the lower book's rim cut
    surface.box((0.24, 0.52, 0.80), (0.40, 0.64, 0.82), paper)  # along one side into a piece of its own
    # A single book whose top edges the fusion rounded off: its top one voxel higher than its sides, a cell in.
    for axis, sign in ((0, -1), (0, 1), (1, -1), (1, 1)):
        surface.face((1.0, 0.2, 0.76), (1.24, 0.38, 0.78), axis, sign, paper)
    surface.face((1.02, 0.22, 0.80), (1.22, 0.36, 0.80), 2, 1, paper)
    voxels = surface.voxels()
    x, y, z = voxels.points.T
    labels = np.where(z > 0.75, np.where(x < 0.7, np.where(y < 0.45, 1, 3), 2), 0)
    labels[(labels == 3) & (x > 0.41) & (np.abs(z - 0.80) < 1e-6)] = 4  # the piece: the lower book's rim there
    split = split_stacked(labels, voxels, CONFIG)
    for stack, (y0, y1) in ((1, (0.21, 0.35)), (3, (0.51, 0.65))):
        upper_top = (labels == stack) & (np.abs(z - 0.82) < 1e-6)
        lower_rim = (labels == stack) & (np.abs(z - 0.80) < 1e-6) & ((x < 0.23) | (y < y0) | (y > y1))
        assert len(set(split[upper_top].tolist())) == 1 and len(set(split[lower_rim].tolist())) == 1
        assert split[upper_top][0] != split[lower_rim][0], 'the two books of the stack come apart'
    assert np.all(split[labels == 2] == 2) and np.all(split[labels == 0] == 0), 'the single book and the table stay'


def test_a_dark_leg_with_its_apron_joins_the_top_above_it_but_a_dark_seat_under_the_top_stays_apart():
    from gpt4scene_ros.objects.segmentation.regions import merge_hanging_parts

    v = 0.02

    def solid(low, high):
        axes = [np.arange(lo, hi + 1e-9, v) for lo, hi in zip(low, high)]
        return np.stack(np.meshgrid(*axes, indexing='ij'), axis=-1).reshape(-1, 3)

    light, dark = (200, 170, 130), (50, 40, 42)
    parts = {  # label: (points, colour)
        0: (solid((0.0, 0.0, 0.70), (1.6, 0.8, 0.74)), light),  # a table top
        # a leg and the apron it holds, in darker wood: 0.5 m wide, thin only across (the 7-Scenes table's legs)
        1: (
            np.concatenate([solid((0.0, 0.0, 0.0), (0.06, 0.06, 0.62)), solid((0.0, 0.0, 0.56), (0.5, 0.04, 0.62))]),
            dark,
        ),
        2: (solid((0.7, 0.25, 0.58), (1.15, 0.7, 0.62)), dark),  # a seat tucked under the top: wide, not a leg
    }
    points = np.concatenate([p for p, _ in parts.values()])
    colors = np.concatenate([np.tile(np.array(c, float), (len(p), 1)) for p, c in parts.values()])
    truth = np.concatenate([np.full(len(p), label) for label, (p, _) in parts.items()])
    voxels = surface_voxels(points, colors, np.tile([0.0, 0.0, 1.0], (len(points), 1)), v)
    keys = pack_keys(np.rint(points / v))
    order = np.argsort(keys, kind='stable')
    labels = truth[order][np.searchsorted(keys[order], voxels.keys, side='right') - 1]
    merged = merge_hanging_parts(labels, shading_invariant_colors(voxels.colors), voxels, CONFIG)
    group = {label: set(np.unique(merged[labels == label]).tolist()) for label in parts}
    assert group[1] == group[0], 'the leg and its apron join the top they hold'
    assert group[2] != group[0] and len(group[2]) == 1, 'the seat under the top stays apart'


def test_a_chair_back_tucked_against_a_tables_edge_is_split_off_but_a_chairs_back_and_a_sofas_arms_stay():
    from gpt4scene_ros.objects.segmentation.resting import split_tucked

    wood = (150, 110, 70)
    parts = {  # object: its boxes, all in one wood colour
        'table': [((-1.0, -0.4, 0.70), (0.6, 0.4, 0.74))]
        + [((x, y, 0.0), (x + 0.06, y + 0.06, 0.70)) for x in (-0.96, 0.5) for y in (-0.36, 0.3)],
        # the back of a chair pushed under it: it shows above and below the edge it touches; its seat is hidden
        'tucked back': [((-0.4, 0.42, 0.48), (0.0, 0.46, 0.80))],
        # a chair standing free, its back on its seat, and a sofa with its arms reaching the floor
        'chair': [((1.5, -0.2, 0.41), (1.95, 0.25, 0.45)), ((1.5, 0.21, 0.45), (1.95, 0.25, 0.90))]
        + [((x, y, 0.0), (x + 0.04, y + 0.04, 0.41)) for x in (1.5, 1.91) for y in (-0.2, 0.21)],
        'sofa': [((-1.0, -2.0, 0.0), (-0.2, -0.6, 0.42)), ((-1.0, -2.15, 0.0), (-0.2, -2.0, 0.6))]
        + [((-1.0, -0.6, 0.0), (-0.2, -0.45, 0.6))],
    }
    surface = Surface().floor(half_x=3.0, half_y=3.0)
    for boxes in parts.values():
        for lo, hi in boxes:
            surface.box(lo, hi, wood)
    # Through the whole segmentation: the table and the tucked back come apart.
    segmentation, boxes = segments(surface)
    table = OrientedBox((-0.2, 0.0, 0.37), (1.6, 0.8, 0.74), 0.0)
    back = OrientedBox((-0.2, 0.44, 0.64), (0.4, 0.04, 0.32), 0.0)
    assert best_iou(boxes, table) >= 0.8 and best_iou(boxes, back) >= 0.5
    # The rule alone, on one segment per piece of furniture (the table holding the back it touches).
    voxels = segmentation.voxels
    owner = np.full(len(voxels), -1)
    segment_of = {'table': 0, 'tucked back': 0, 'chair': 1, 'sofa': 2}
    for name, part_boxes in parts.items():
        for lo, hi in part_boxes:
            inside = np.all((voxels.points >= np.add(lo, -1e-6)) & (voxels.points <= np.add(hi, 1e-6)), axis=1)
            owner[inside] = segment_of[name]
    split = split_tucked(owner, voxels, voxels.edges, np.zeros(len(voxels)), CONFIG)
    in_back = np.all((voxels.points >= (-0.4, 0.42, 0.48)) & (voxels.points <= (0.0, 0.46, 0.80)), axis=1)
    assert len(np.unique(split[in_back])) == 1 and split[in_back][0] not in (0, 1, 2), 'the tucked back is its own'
    assert np.mean(split[(owner == 0) & ~in_back] == 0) > 0.98, 'the table keeps its legs'
    for label, name in ((1, 'the chair'), (2, 'the sofa')):
        assert np.all(split[owner == label] == label), f'{name} stays whole'


def test_a_boxs_corner_edge_of_a_blended_colour_joins_its_box_but_a_stick_standing_against_it_does_not():
    """At the crease between two boxes of different colours the fused colour blends, so a box's vertical corner
    edge there can be a segment too far in colour from either box to merge; it continues its own box without a
    crease. A thin stick standing against the box meets it at a concave crease and stays apart."""
    from gpt4scene_ros.objects.segmentation.regions import edge_evidence, merge_smooth_slivers

    purple, teal = (120, 60, 140), (60, 130, 140)
    surface = Surface().box((0.0, 0.0, 0.0), (0.3, 0.3, 0.3), purple).box((0.32, 0.0, 0.0), (0.7, 0.4, 0.36), teal)
    surface.box((0.1, -0.06, 0.0), (0.14, -0.02, 0.14), purple)  # a stick against the box's side
    voxels = surface.voxels()
    p = voxels.points
    labels = np.where(p[:, 0] > 0.31, 1, 0)
    labels[(p[:, 0] >= 0.26) & (p[:, 0] <= 0.3) & (p[:, 1] >= 0.26) & (p[:, 1] <= 0.3)] = 2  # the corner edge
    labels[p[:, 1] < -0.01] = 3
    _, concave, _, _ = edge_evidence(voxels, CONFIG)
    merged = merge_smooth_slivers(labels, voxels, voxels.edges, np.ones(len(voxels.edges), bool), concave)
    assert np.all(merged[labels == 2] == merged[labels == 0][0]), 'the corner edge joins its box'
    assert set(merged[labels == 3].tolist()) == {3}, 'the stick against the box stays apart'
    assert set(merged[labels == 1].tolist()) == {1}, 'the other box stays apart'
