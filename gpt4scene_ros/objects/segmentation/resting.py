"""Splitting off what rests on a segment's horizontal surfaces (a mug on the table, a box on a crate) and what is
tucked against its top (a chair's back at a table's edge)."""

from __future__ import annotations

import cv2
import numpy as np

from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.objects.segmentation.regions import components, segment_bounds, segment_members
from gpt4scene_ros.objects.voxels import SurfaceVoxels

RESTING_MAX_COVER = 0.6
"""A body covering at least this share of the surface it lies on stays with it."""


def _convex_hull_mask(cells: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean image of ``shape``: the convex hull of the (row, col) ``cells``, and the cells themselves."""
    mask = np.zeros(shape, np.uint8)
    if len(cells) >= 3:
        hull = cv2.convexHull(cells[:, ::-1].astype(np.int32).reshape(-1, 1, 2))
        cv2.fillConvexPoly(mask, hull, 1)
    mask[cells[:, 0], cells[:, 1]] = 1
    return mask.astype(bool)


def _segment_surfaces(
    labels: np.ndarray, voxels: SurfaceVoxels, edges: np.ndarray, config: InstanceConfig
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per segment of at least twice ``min_instance_voxels``: its voxel indices, the indices (into ``edges``) of
    its own edges, those edges in its local numbering, and per voxel its upward flat surface (-1: none), the
    connected upward-facing voxels of one height."""
    v = voxels.voxel_size_m
    order = np.argsort(labels, kind='stable')
    sorted_labels = labels[order]
    # Each segment's own edges, found once: edges within one segment, grouped by it.
    within = (labels[edges[:, 0]] == labels[edges[:, 1]]) & (labels[edges[:, 0]] >= 0)
    edge_index = np.flatnonzero(within)
    edge_index = edge_index[np.argsort(labels[edges[edge_index, 0]], kind='stable')]
    edge_labels = labels[edges[edge_index, 0]]
    sizes = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(0, np.int64)
    local = np.full(len(labels), -1)
    result = []
    for segment in np.flatnonzero(sizes >= 2 * config.min_instance_voxels):
        members = order[np.searchsorted(sorted_labels, segment) : np.searchsorted(sorted_labels, segment, side='right')]
        local[members] = np.arange(len(members))
        mine = edge_index[np.searchsorted(edge_labels, segment) : np.searchsorted(edge_labels, segment, side='right')]
        seg_edges = local[edges[mine]]
        up = voxels.normals[members, 2] > 0.9
        z = voxels.points[members, 2]
        flat = up[seg_edges[:, 0]] & up[seg_edges[:, 1]] & (np.abs(z[seg_edges[:, 0]] - z[seg_edges[:, 1]]) <= 0.6 * v)
        result.append((members, mine, seg_edges, np.where(up, components(len(members), seg_edges, flat), -1)))
    return result


def split_resting(
    labels: np.ndarray, voxels: SurfaceVoxels, edges: np.ndarray, keep_edge: np.ndarray, config: InstanceConfig
) -> np.ndarray:
    """Split off, in every segment, what rests on one of its horizontal surfaces.

    In each segment the upward-facing surfaces of at least ``min_support_voxels``
    (a table top, a crate's lid, a seat) are set aside and the rest falls apart
    into bodies. A body whose bottom lies on such a surface, with its footprint
    inside the surface's convex hull (a mug on the table, a box on a crate;
    not a backrest beside the seat's exposed top), is an object of its own. Each
    surface goes back to the body under it.
    """
    v = voxels.voxel_size_m
    points = voxels.points
    next_label = int(labels.max()) + 1 if (labels >= 0).any() else 0
    segments = _segment_surfaces(labels, voxels, edges, config)
    labels = labels.copy()
    for members, mine, seg_edges, surfaces in segments:
        z = points[members, 2]
        up = surfaces >= 0
        sizes = np.bincount(surfaces[up], minlength=len(members)) if up.any() else np.zeros(1, int)
        support_ids = np.flatnonzero(sizes >= config.min_support_voxels)
        if len(support_ids) == 0:
            continue
        is_support = np.isin(surfaces, support_ids)
        body_edge = ~is_support[seg_edges[:, 0]] & ~is_support[seg_edges[:, 1]] & keep_edge[mine]
        # Within a surface's hull, its height separates what is above from what is below: a box standing flush
        # with the edge of the one under it shares a plane with it, but not across the lid's height.
        cells = np.floor(points[members, :2] / v).astype(np.int64)
        origin = cells.min(axis=0)
        cells -= origin
        shape = tuple(cells.max(axis=0) + 1)
        for support in support_ids:
            if shape[0] * shape[1] > 4_000_000:
                break
            in_support = surfaces == support
            height = float(np.median(z[in_support]))
            hull = cv2.dilate(_convex_hull_mask(cells[in_support], shape).astype(np.uint8), np.ones((3, 3), np.uint8))
            hull = hull.astype(bool)
            low, high = seg_edges[:, 0], seg_edges[:, 1]
            plane = height + 0.5 * v
            crossing = (z[low] < plane) != (z[high] < plane)
            within = hull[cells[low, 0], cells[low, 1]] & hull[cells[high, 0], cells[high, 1]]
            body_edge &= ~(crossing & within)
        bodies = np.where(is_support, -1, components(len(members), seg_edges, body_edge))
        body_ids, body_sizes = np.unique(bodies[bodies >= 0], return_counts=True)
        # Surfaces go to the body below them (most shared edges with voxels lower than the surface).
        owner = {}
        for support in support_ids:
            in_support = surfaces == support
            height = float(np.median(z[in_support]))
            pairs = seg_edges[in_support[seg_edges[:, 0]] ^ in_support[seg_edges[:, 1]]]
            other = np.where(in_support[pairs[:, 0]], pairs[:, 1], pairs[:, 0])
            other = other[(bodies[other] >= 0) & (z[other] < height - 0.5 * v)]
            if len(other):
                owner[support] = int(np.bincount(bodies[other]).argmax())
        resting = {}
        for support in support_ids:
            cells_support = np.floor(points[members[surfaces == support], :2] / v).astype(np.int64)
            height = float(np.median(z[surfaces == support]))
            touching = seg_edges[
                (is_support[seg_edges[:, 0]] & (surfaces[seg_edges[:, 0]] == support))
                | (is_support[seg_edges[:, 1]] & (surfaces[seg_edges[:, 1]] == support))
            ]
            neighbours = np.unique(bodies[touching.ravel()])
            for body in neighbours[neighbours >= 0]:
                if body in resting:
                    continue
                in_body = bodies == body
                body_z = z[in_body]
                if (
                    body_sizes[np.searchsorted(body_ids, body)] < config.min_instance_voxels
                    or not (height - v <= body_z.min() <= height + 2 * v)
                    or np.median(body_z) <= height + v
                ):
                    continue
                # The body's footprint includes its own upper surfaces (a box's lid, a sofa back's top).
                footprint = in_body.copy()
                for own, below in owner.items():
                    if below == body:
                        footprint |= surfaces == own
                cells_body = np.floor(points[members[footprint], :2] / v).astype(np.int64)
                origin = np.minimum(cells_support.min(axis=0), cells_body.min(axis=0)) - 1
                shape = tuple(np.maximum(cells_support.max(axis=0), cells_body.max(axis=0)) - origin + 2)
                if shape[0] * shape[1] > 4_000_000:
                    continue
                # Inside the hull, not on its edge: what stands along the border of a surface (a backrest)
                # is beside it.
                hull = cv2.erode(
                    _convex_hull_mask(cells_support - origin, shape).astype(np.uint8), np.ones((3, 3), np.uint8)
                ).astype(bool)
                inside_share = np.mean(hull[cells_body[:, 0] - origin[0], cells_body[:, 1] - origin[1]])
                # What covers most of the surface is its top layer (a mattress, a seat cushion), not a thing on it.
                cover = len(np.unique(cells_body, axis=0)) / max(1, int(hull.sum()))
                if inside_share >= 0.7 and cover < RESTING_MAX_COVER:
                    resting[body] = support
        if not resting:
            continue
        for body in resting:
            parts = bodies == body
            for support, body_below in owner.items():
                if body_below == body:
                    parts |= surfaces == support
            labels[members[parts]] = next_label
            next_label += 1
    return labels


TUCKED_MIN_RISE_M = 0.04
"""A part beside a segment's top that reaches this far above it, ..."""
TUCKED_MIN_DROP_M = 0.10
"""... and this far below it, ..."""
TUCKED_MIN_CLEARANCE_M = 0.20
"""... while ending this far above the floor, is a chair's back tucked against the top's edge."""


def split_tucked(
    labels: np.ndarray, voxels: SurfaceVoxels, edges: np.ndarray, floor_height_m: np.ndarray, config: InstanceConfig
) -> np.ndarray:
    """Split off, in every segment, what stands beside its largest top and straddles the top's height without
    reaching the floor: the back of a chair pushed under a table, touching the table's edge in the map.

    The parts of one piece of furniture that rise beside its top reach the floor (a sofa's arm, a bed's
    headboard, a shelf's side) or stand on the top's level (a seat's backrest, a sofa's back); a tucked chair's
    back shows above and below the table's edge, its seat and legs hidden under the table.
    """
    v = voxels.voxel_size_m
    points = voxels.points
    next_label = int(labels.max()) + 1 if (labels >= 0).any() else 0
    segments = _segment_surfaces(labels, voxels, edges, config)
    labels = labels.copy()
    for members, _, seg_edges, surfaces in segments:
        if not (surfaces >= 0).any():
            continue
        z = points[members, 2]
        surface_sizes = np.bincount(surfaces[surfaces >= 0])
        top = int(surface_sizes.argmax())
        if surface_sizes[top] < config.min_support_voxels:
            continue
        in_top = surfaces == top
        height = float(np.median(z[in_top]))
        cells = np.floor(points[members, :2] / v).astype(np.int64)
        cells -= cells.min(axis=0)
        shape = tuple(cells.max(axis=0) + 1)
        if shape[0] * shape[1] > 4_000_000:
            continue
        # The top's own cells, opened so that a strip of it leaking onto the rail of a chair's back drops out.
        top_cells = np.zeros(shape, np.uint8)
        top_cells[cells[in_top, 0], cells[in_top, 1]] = 1
        closed = cv2.morphologyEx(top_cells, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        opened = np.argwhere(cv2.morphologyEx(closed, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8)) > 0)
        if len(opened) < 3:
            continue
        hull = cv2.dilate(_convex_hull_mask(opened, shape).astype(np.uint8), np.ones((3, 3), np.uint8))
        beside = ~hull.astype(bool)[cells[:, 0], cells[:, 1]]
        parts = np.where(
            beside, components(len(members), seg_edges, beside[seg_edges[:, 0]] & beside[seg_edges[:, 1]]), -1
        )
        part_ids, part_sizes = np.unique(parts[parts >= 0], return_counts=True)
        for part in part_ids[part_sizes >= config.min_instance_voxels]:
            mine = parts == part
            low, high = np.percentile(z[mine], [2, 98])
            floor = float(np.median(floor_height_m[members[mine]]))
            if (
                high >= height + TUCKED_MIN_RISE_M
                and low <= height - TUCKED_MIN_DROP_M
                and low >= floor + TUCKED_MIN_CLEARANCE_M
            ):
                labels[members[mine]] = next_label
                next_label += 1
    return labels


STACK_MAX_LAYERS = 5
"""A segment at most this many voxels tall can be a stack of flat objects."""
STACK_TOP_SHARE = (0.2, 0.8)
"""The share of a stack's footprint that its upper object covers."""
STACK_MIN_RIM = 0.85
"""The share of the ring of cells around the upper object that the lower one must fill (it may reach one edge)."""
STACK_MIN_AROUND = 0.6
"""The share of the second ring of cells around the upper object that the lower one must fill."""


def split_stacked(labels: np.ndarray, voxels: SurfaceVoxels, config: InstanceConfig) -> np.ndarray:
    """Split a flat segment that is a stack of two flat objects (a book on a larger book) into both.

    Seen from above, the upper object is the segment's highest voxel layer over an inner part of its footprint,
    surrounded by the lower object's rim and sides (nearly all of the first ring of cells around it) two cells or
    more wide on most sides: the edge of a single book, one cell wide, does not count. The upper object's voxels
    become a segment of their own; the rest is the lower object, whose marker then falls on its own rim. A lower
    object cut in pieces is seen whole through its other flat pieces.
    """
    v = voxels.voxel_size_m
    valid = labels >= 0
    if not valid.any():
        return labels
    given, labels = labels, labels.copy()
    next_label = int(labels.max()) + 1
    sizes = np.bincount(labels[valid])
    members_of = segment_members(given, len(sizes))
    all_cells = np.rint(voxels.points[:, :2] / v).astype(np.int64)
    all_layers = np.rint(voxels.points[:, 2] / v).astype(np.int64)
    low, high = segment_bounds(given, voxels.points, len(sizes))
    lowest_layer, highest_layer = np.rint(low[:, 2] / v), np.rint(high[:, 2] / v)
    for segment in np.flatnonzero(sizes >= 2 * config.min_instance_voxels):
        lowest, highest = int(lowest_layer[segment]), int(highest_layer[segment])
        if highest - lowest + 1 > STACK_MAX_LAYERS:
            continue
        members = members_of[segment]
        layer = all_layers[members]
        cells = all_cells[members]
        origin = cells.min(axis=0) - 2  # two free cells around, for the rings
        cells = cells - origin
        shape = tuple(cells.max(axis=0) + 3)
        top = np.full(shape, np.iinfo(np.int64).min)
        np.maximum.at(top, (cells[:, 0], cells[:, 1]), layer)
        occupied = top > np.iinfo(np.int64).min
        count, components_image = cv2.connectedComponents((top == highest).astype(np.uint8), connectivity=4)
        if count < 2:
            continue
        largest = 1 + int(np.argmax(np.bincount(components_image.ravel())[1:]))
        inner = (components_image == largest).astype(np.uint8)
        share = inner.sum() / occupied.sum()
        if inner.sum() < config.min_instance_voxels // 2 or not STACK_TOP_SHARE[0] <= share <= STACK_TOP_SHARE[1]:
            continue
        # The lower object may be cut in pieces: flat pieces lying within its height, under the upper object's
        # layer, count for the rings too (not the table under a single book: it reaches the segment's bottom).
        piece = valid & (lowest_layer[np.maximum(given, 0)] >= lowest)
        piece &= highest_layer[np.maximum(given, 0)] < highest
        piece &= np.all((all_cells >= origin) & (all_cells < origin + shape), axis=1)
        occupied[all_cells[piece, 0] - origin[0], all_cells[piece, 1] - origin[1]] = True
        first_ring = cv2.dilate(inner, np.ones((3, 3), np.uint8)).astype(bool) & ~inner.astype(bool)
        second_ring = cv2.dilate(inner, np.ones((5, 5), np.uint8)).astype(bool) & ~first_ring & ~inner.astype(bool)
        if np.mean(occupied[first_ring]) < STACK_MIN_RIM or np.mean(occupied[second_ring]) < STACK_MIN_AROUND:
            continue
        upper = inner.astype(bool)[cells[:, 0], cells[:, 1]] & (layer >= highest - 1)
        labels[members[upper]] = next_label
        next_label += 1
    return labels
