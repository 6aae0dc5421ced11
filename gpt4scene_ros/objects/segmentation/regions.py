"""Patches and regions of the surface voxels: edge evidence (colour steps, concave and convex creases), connected
components, and the merging of regions (tiny patches, similar neighbours, parts across creases, hanging parts)."""

from __future__ import annotations

import heapq
import math

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.objects.segmentation.colors import LAB_WEIGHTS
from gpt4scene_ros.objects.voxels import SurfaceVoxels, lookup, packed_offset


def edge_evidence(
    voxels: SurfaceVoxels, config: InstanceConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per edge: colour distance (weighted Lab), whether it crosses a concave crease, a convex one, and a convex
    ridge that passes the sanity check below."""
    i, j = voxels.edges[:, 0], voxels.edges[:, 1]
    assert voxels.lab is not None  # surface_voxels always computes it
    lab = voxels.lab * LAB_WEIGHTS
    difference = lab[i] - lab[j]
    color_distance = np.sqrt(np.einsum('ij,ij->i', difference, difference))
    direction = voxels.points[i] - voxels.points[j]
    direction /= np.maximum(np.sqrt(np.einsum('ij,ij->i', direction, direction)), 1e-12)[:, None]
    n_i, n_j = voxels.normals[i], voxels.normals[j]
    convexity = np.einsum('ij,ij->i', n_i - n_j, direction)
    cos_angle = np.clip(np.einsum('ij,ij->i', n_i, n_j), -1.0, 1.0)
    concave = (convexity < -0.05) & (cos_angle < math.cos(math.radians(config.concave_angle_deg)))
    # A ridge between two faces of one object runs across the step from one voxel to the other; two
    # surfaces that only touch at a corner (the back of one box and the top of the one beside it) are
    # diagonal neighbours with the step along the ridge line: not a convex connection (LCCP's sanity check).
    ridge = np.stack(
        [
            n_i[:, 1] * n_j[:, 2] - n_i[:, 2] * n_j[:, 1],
            n_i[:, 2] * n_j[:, 0] - n_i[:, 0] * n_j[:, 2],
            n_i[:, 0] * n_j[:, 1] - n_i[:, 1] * n_j[:, 0],
        ],
        axis=1,
    )
    ridge_length = np.sqrt(np.einsum('ij,ij->i', ridge, ridge))
    along_ridge = np.abs(np.einsum('ij,ij->i', ridge, direction)) / np.maximum(ridge_length, 1e-9)
    convex = (convexity > 0.05) & (cos_angle < math.cos(math.radians(config.convex_angle_deg)))
    return color_distance, concave, convex, convex & (along_ridge < 0.5)


def components(count: int, edges: np.ndarray, keep_edge: np.ndarray) -> np.ndarray:
    """Per node (0..count-1): its connected component in the graph of the ``edges`` (Mx2) where ``keep_edge``."""
    kept = edges[keep_edge]
    graph = coo_matrix((np.ones(len(kept), np.int8), (kept[:, 0], kept[:, 1])), shape=(count, count))
    return connected_components(graph, directed=False)[1]


def absorb_tiny(
    labels: np.ndarray,
    features: np.ndarray,
    edges: np.ndarray,
    active_edge: np.ndarray,
    min_size: int,
    color_scale: float,
    rounds: int = 4,
) -> np.ndarray:
    """Regions smaller than ``min_size`` (mostly the mixed-colour voxels along object borders) join a neighbour:
    the one they share most edges with, discounted by colour difference (vectorised)."""
    for _ in range(rounds):
        a, b = labels[edges[active_edge, 0]], labels[edges[active_edge, 1]]
        across = a != b
        a, b = a[across], b[across]
        n = int(labels.max()) + 1
        size = np.bincount(labels[labels >= 0], minlength=n)
        source = np.concatenate([a, b])
        target = np.concatenate([b, a])
        tiny = size[source] < min_size
        source, target = source[tiny], target[tiny]
        if len(source) == 0:
            break
        pair, shared = np.unique(source.astype(np.int64) * n + target, return_counts=True)
        source, target = pair // n, pair % n
        valid = labels >= 0
        means = (
            np.stack(
                [np.bincount(labels[valid], weights=features[valid, c], minlength=n) for c in range(features.shape[1])],
                axis=1,
            )
            / np.maximum(size, 1)[:, None]
        )
        score = shared / (1.0 + np.linalg.norm(means[source] - means[target], axis=1) / color_scale)
        order = np.lexsort((size[target], score, source))  # per source: best score, then largest last
        source, target = source[order], target[order]
        last = np.r_[source[1:] != source[:-1], True]
        mapping = np.arange(n)
        mapping[source[last]] = target[last]
        for _ in range(8):  # follow chains of tiny regions
            mapping = mapping[mapping]
        labels = np.where(labels >= 0, mapping[np.maximum(labels, 0)], -1)
    return labels


def merge_regions(
    labels: np.ndarray,
    features: np.ndarray,
    edges: np.ndarray,
    active_edge: np.ndarray,
    concave: np.ndarray,
    convex: np.ndarray,
    config: InstanceConfig,
) -> np.ndarray:
    """Greedy region merging over the region adjacency graph, most similar mean colour first.

    Regions merge when their mean colours are close and their border is not mostly concave, or when their
    border is mostly convex (two faces of one object, shaded differently).
    """
    valid = labels >= 0
    _, labels_compact = np.unique(labels[valid], return_inverse=True)
    labels = labels.copy()
    labels[valid] = labels_compact
    n = int(labels.max()) + 1 if valid.any() else 0
    if n <= 1:
        return labels
    size = np.bincount(labels[valid], minlength=n).astype(np.float64)
    sums = np.stack(
        [np.bincount(labels[valid], weights=features[valid, c], minlength=n) for c in range(features.shape[1])], axis=1
    )
    a, b = labels[edges[active_edge, 0]], labels[edges[active_edge, 1]]
    creases = concave[active_edge].astype(np.float64)
    ridges = convex[active_edge].astype(np.float64)
    across = a != b
    a, b, creases, ridges = a[across], b[across], creases[across], ridges[across]
    low, high = np.minimum(a, b), np.maximum(a, b)
    pair, inverse = np.unique(low.astype(np.int64) * n + high, return_inverse=True)
    shared = np.bincount(inverse).astype(np.float64)
    creased = np.bincount(inverse, weights=creases)
    ridged = np.bincount(inverse, weights=ridges)
    neighbours: list[dict[int, list[float]]] = [dict() for _ in range(n)]
    for x, y, s, c, r in zip(
        (pair // n).tolist(), (pair % n).tolist(), shared.tolist(), creased.tolist(), ridged.tolist()
    ):
        record = [s, c, r]
        neighbours[x][y] = record
        neighbours[y][x] = record
    size_list, sum_list = size.tolist(), sums.tolist()
    parent = list(range(n))
    version = [0] * n
    limit = config.merge_color_distance
    max_creased = config.merge_max_concave_fraction

    def mergeable(x: int, y: int) -> tuple[float, bool]:
        """(priority, allowed): colour distance of the region means; blocked across mostly concave borders;
        a mostly convex border merges at any colour distance (first)."""
        sx, sy = size_list[x], size_list[y]
        mx, my = sum_list[x], sum_list[y]
        distance = math.sqrt(sum((p / sx - q / sy) ** 2 for p, q in zip(mx, my)))
        shared_edges, creased_edges, ridged_edges = neighbours[x][y]
        if ridged_edges >= 0.5 * shared_edges and creased_edges <= 0.1 * shared_edges:
            return -1.0, True
        return distance, distance <= limit and creased_edges <= max_creased * shared_edges

    heap = []
    for x in range(n):
        for y in neighbours[x]:
            if y > x:
                priority, allowed = mergeable(x, y)
                if allowed:
                    heap.append((priority, x, y, 0, 0))
    heapq.heapify(heap)
    while heap:
        _, x, y, version_x, version_y = heapq.heappop(heap)
        if parent[x] != x or parent[y] != y or version[x] != version_x or version[y] != version_y:
            continue
        if size_list[y] > size_list[x]:
            x, y = y, x
        parent[y] = x
        size_list[x] += size_list[y]
        sum_list[x] = [p + q for p, q in zip(sum_list[x], sum_list[y])]
        for z, record in neighbours[y].items():
            if z == x:
                continue
            existing = neighbours[x].get(z)
            if existing is None:
                neighbours[x][z] = record
            else:
                for k in range(3):
                    existing[k] += record[k]
                record = existing
            del neighbours[z][y]
            neighbours[z][x] = record
        neighbours[x].pop(y, None)
        neighbours[y] = {}
        version[x] += 1
        for z in neighbours[x]:
            priority, allowed = mergeable(x, z)
            if allowed:
                low_id, high_id = min(x, z), max(x, z)
                heapq.heappush(heap, (priority, low_id, high_id, version[low_id], version[high_id]))
    root = np.array(parent)
    for _ in range(64):
        next_root = root[root]
        if np.array_equal(next_root, root):
            break
        root = next_root
    return np.where(valid, root[np.maximum(labels, 0)], -1)


def merge_across_creases(
    labels: np.ndarray, features: np.ndarray, edges: np.ndarray, active_edge: np.ndarray, config: InstanceConfig
) -> np.ndarray:
    """Merge neighbours of the same colour whatever their border: parts of one piece of furniture meet at
    concave creases (a backrest and its seat, a sofa's back and its seat). Objects that stand on one another
    are split again afterwards (:func:`gpt4scene_ros.objects.segmentation.resting.split_resting`)."""
    valid = labels >= 0
    if not valid.any():
        return labels
    n = int(labels.max()) + 1
    a, b = labels[edges[active_edge, 0]], labels[edges[active_edge, 1]]
    across = a != b
    pair, shared = np.unique(
        np.minimum(a[across], b[across]).astype(np.int64) * n + np.maximum(a[across], b[across]), return_counts=True
    )
    size = np.bincount(labels[valid], minlength=n).astype(np.float64)
    means = (
        np.stack(
            [np.bincount(labels[valid], weights=features[valid, c], minlength=n) for c in range(features.shape[1])],
            axis=1,
        )
        / np.maximum(size, 1)[:, None]
    )
    first, second = pair // n, pair % n
    distance = np.linalg.norm(means[first] - means[second], axis=1)
    close = (
        (distance <= config.crease_merge_color_distance)
        & (shared >= 3)
        & (np.minimum(size[first], size[second]) >= config.min_instance_voxels)
    )
    graph = coo_matrix((np.ones(int(close.sum())), (first[close], second[close])), shape=(n, n))
    roots = connected_components(graph, directed=False)[1]
    return np.where(valid, roots[np.maximum(labels, 0)], -1)


def merge_hanging_parts(
    labels: np.ndarray, features: np.ndarray, voxels: SurfaceVoxels, config: InstanceConfig
) -> np.ndarray:
    """Merge a segment into the one just above its top when their colours are close: table and chair legs end
    under the top they hold, where the camera never looks, so their surfaces do not touch in the map. A leg
    (thin and tall: at most ``LEG_MAX_WIDTH_M`` across, at least ``LEG_MIN_ASPECT`` times as tall) joins the
    segment above it whatever its colour (a thin part's fused colour blends with what is behind it, and legs are
    often stained darker than the top) and across a larger gap (up to ``LEG_MAX_GAP_VOXELS``). Thin is measured
    along the part's own horizontal axes, so a leg with the apron it holds (a board under the top's edge) is one."""
    valid = labels >= 0
    if not valid.any():
        return labels
    n = int(labels.max()) + 1
    size = np.bincount(labels[valid], minlength=n).astype(np.float64)
    means = (
        np.stack(
            [np.bincount(labels[valid], weights=features[valid, c], minlength=n) for c in range(features.shape[1])],
            axis=1,
        )
        / np.maximum(size, 1)[:, None]
    )
    points = voxels.points
    v = voxels.voxel_size_m
    low, high = segment_bounds(labels, points, n)
    extent = high - low + v
    across = _thickness(labels, points, n, v)
    leg = (across <= LEG_MAX_WIDTH_M) & (extent[:, 2] >= LEG_MIN_ASPECT * across)
    z = points[:, 2]
    top_layer = valid & (z >= high[np.maximum(labels, 0), 2] - 0.5 * v)
    index = np.flatnonzero(top_layer)
    above = np.full(len(index), -1)
    gap = np.zeros(len(index), np.int64)
    for dz in range(1, LEG_MAX_GAP_VOXELS + 1):
        found = lookup(voxels.keys, voxels.keys[index] + packed_offset(0, 0, dz))
        hit = (above < 0) & (found >= 0)
        other = np.where(found >= 0, labels[np.maximum(found, 0)], -1)
        take = hit & (other >= 0) & (other != labels[index])
        above = np.where(take, other, above)
        gap = np.where(take, dz, gap)
    parent = np.arange(n)
    owners = labels[index]
    for segment in np.unique(owners):
        mine = owners == segment
        reach = LEG_MAX_GAP_VOXELS if leg[segment] else 4
        holders = above[mine & (gap <= reach)]
        holders = holders[holders >= 0]
        if len(holders) < 0.5 * mine.sum():
            continue
        holder = int(np.bincount(holders).argmax())
        close = np.linalg.norm(means[holder] - means[segment]) <= config.merge_color_distance
        if size[holder] > size[segment] and (close or leg[segment]):
            parent[segment] = holder
    return _follow(labels, parent)


LEG_MAX_WIDTH_M = 0.12
LEG_MIN_ASPECT = 2.5
LEG_MAX_GAP_VOXELS = 8


def merge_covering_slabs(labels: np.ndarray, voxels: SurfaceVoxels) -> np.ndarray:
    """Merge a slab (at most ``SLAB_MAX_HEIGHT_M`` tall) into a segment whose footprint it covers for the most part
    (``SLAB_MIN_COVER`` of its box) while lying inside it (``SLAB_MIN_INSIDE`` of the slab's box), on or within
    its height: a seat cushion on its chair, a mattress on its bed, whose colours differ from the frame under
    them. A magazine covers a small share of its table; a table top over a tucked chair lies mostly outside it."""
    valid = labels >= 0
    if not valid.any():
        return labels
    v = voxels.voxel_size_m
    n = int(labels.max()) + 1
    low, high = segment_bounds(labels, voxels.points, n)
    high = high + v  # a voxel's extent
    present = np.isfinite(low[:, 0])
    area = np.prod(high[:, :2] - low[:, :2], axis=1)
    parent = np.arange(n)
    for slab in np.flatnonzero(present & (high[:, 2] - low[:, 2] <= SLAB_MAX_HEIGHT_M)):
        overlap = _box_overlaps(low[:, :2], high[:, :2], low[slab, :2], high[slab, :2])  # footprint areas
        cover = overlap / np.maximum(area, 1e-9)
        inside = overlap / max(area[slab], 1e-9)
        on_or_in = (low[slab, 2] >= low[:, 2] - v) & (low[slab, 2] <= high[:, 2] + 2 * v)
        fits = present & on_or_in & (cover >= SLAB_MIN_COVER) & (inside >= SLAB_MIN_INSIDE)
        fits[slab] = False
        if fits.any():
            parent[slab] = int(np.flatnonzero(fits)[np.argmax(cover[fits])])
    return _follow(labels, parent)


SLAB_MAX_HEIGHT_M = 0.10
SLAB_MIN_COVER = 0.6
SLAB_MIN_INSIDE = 0.8


def merge_enclosed_parts(labels: np.ndarray, voxels: SurfaceVoxels) -> np.ndarray:
    """Merge a thin part into the largest larger segment whose box (a voxel wider across) holds ``PART_MIN_INSIDE``
    of the part's box, below that segment's top: a chair back or a cabinet's rim cut off by depth noise, the lower
    half of a leg, a shelf board. Thin is at most ``PART_MAX_THICKNESS_M`` across and ``PART_MIN_ASPECT`` times as
    long: upright (a sheet or a stick, measured along its own horizontal axes, so a turned chair's back is thin
    too), whose bottom must be ``PART_MIN_BELOW_TOP_M`` under the top, or flat, whose own top must be: a magazine or
    a tray lying on a table, or a book standing on it, stays apart. A flat part that rests on the holder stays apart
    too, however high the holder's box has grown with what earlier stages merged into it (:func:`_rests_on`)."""
    valid = labels >= 0
    if not valid.any():
        return labels
    v = voxels.voxel_size_m
    n = int(labels.max()) + 1
    low, high = segment_bounds(labels, voxels.points, n)
    high = high + v
    present = np.isfinite(low[:, 0])
    size = np.bincount(labels[valid], minlength=n).astype(np.float64)
    extent = np.where(present[:, None], high - low, 0.0)
    volume = np.prod(extent, axis=1)
    across = _thickness(labels, voxels.points, n, v)
    upright = present & _thin_upright(extent[:, 2], across)
    flat = present & (extent[:, 2] <= PART_MAX_THICKNESS_M)
    flat &= np.max(extent[:, :2], axis=1) >= PART_MIN_ASPECT * extent[:, 2]
    # Holders' boxes one voxel wider across: a part's edge smeared by flying pixels sticks out of its holder's box.
    grown_low, grown_high = low - [v, v, 0.0], high + [v, v, 0.0]
    parent = np.arange(n)
    for part in np.flatnonzero(upright | flat):
        overlap = _box_overlaps(grown_low, grown_high, low[part], high[part])  # volumes
        reference_z = low[part, 2] if upright[part] else high[part, 2]
        below_top = reference_z < high[:, 2] - PART_MIN_BELOW_TOP_M
        fits = present & below_top & (overlap >= PART_MIN_INSIDE * volume[part]) & (size > size[part])
        fits[part] = False
        if not fits.any():
            continue
        holder = int(np.flatnonzero(fits)[np.argmax(size[fits])])
        if flat[part] and not upright[part] and _rests_on(voxels.points[labels == holder], low[part], high[part], v):
            continue
        parent[part] = holder
    return _follow(labels, parent)


def merge_smooth_slivers(
    labels: np.ndarray, voxels: SurfaceVoxels, edges: np.ndarray, active_edge: np.ndarray, concave: np.ndarray
) -> np.ndarray:
    """Merge a small upright sliver (at most ``SLIVER_MAX_VOXELS``, thin and tall as in
    :func:`merge_enclosed_parts`) into the larger neighbour it continues without a crease: a box's vertical edge
    whose fused colour blends with the box beside it, too far from either colour for :func:`merge_regions`. That
    neighbour is the one with the longest border that is not concave, and at most ``SLIVER_MAX_CONCAVE`` of their
    border may be; an object standing against another (a stick beside a box, a bottle on a table) meets it at a
    concave crease."""
    valid = labels >= 0
    if not valid.any():
        return labels
    v = voxels.voxel_size_m
    n = int(labels.max()) + 1
    size = np.bincount(labels[valid], minlength=n)
    low, high = segment_bounds(labels, voxels.points, n)
    across = _thickness(labels, voxels.points, n, v)
    sliver = (size > 0) & (size <= SLIVER_MAX_VOXELS) & _thin_upright(high[:, 2] - low[:, 2] + v, across)
    a, b = labels[edges[active_edge, 0]], labels[edges[active_edge, 1]]
    border = (a != b) & (a >= 0) & (b >= 0)
    own = np.concatenate([a[border], b[border]])
    other = np.concatenate([b[border], a[border]])
    creased = np.concatenate([concave[active_edge][border]] * 2)
    mine = sliver[own]
    pair, inverse = np.unique(own[mine].astype(np.int64) * n + other[mine], return_inverse=True)
    shared = np.bincount(inverse, minlength=len(pair))
    creases = np.bincount(inverse, weights=creased[mine].astype(np.float64), minlength=len(pair))
    parent = np.arange(n)
    owners = pair // n
    smooth = shared - creases
    for segment in np.unique(owners):
        rows = np.flatnonzero(owners == segment)
        best = rows[np.argmax(smooth[rows])]
        neighbour = int(pair[best] % n)
        if creases[best] <= SLIVER_MAX_CONCAVE * shared[best] and size[neighbour] > size[segment]:
            parent[segment] = neighbour
    return _follow(labels, parent)


SLIVER_MAX_VOXELS = 100
SLIVER_MAX_CONCAVE = 0.1


def _thin_upright(height: np.ndarray, across: np.ndarray) -> np.ndarray:
    """Per segment (its height, its thickness from :func:`_thickness`): a sheet or a stick, at most
    ``PART_MAX_THICKNESS_M`` across and ``PART_MIN_ASPECT`` times as tall."""
    return (across <= PART_MAX_THICKNESS_M) & (height >= PART_MIN_ASPECT * across)


def _rests_on(holder_points: np.ndarray, low: np.ndarray, high: np.ndarray, voxel_size_m: float) -> bool:
    """Whether a flat part (box ``low``..``high``, ``high`` including its top voxel) lies on the holder rather
    than in its surface, judged by the holder's highest voxel in each column of a band two voxels wide around the
    part's footprint: mostly below the part (a table top around a book) and seldom at the part's own height (a
    mattress around a strip of its top, a cabinet's sides around a shelf board), or no holder there at all."""
    v = voxel_size_m
    xy, first, last = holder_points[:, :2], low[:2], high[:2] - v  # the part's outermost voxel centres
    band = np.all((xy > first - 2.5 * v) & (xy < last + 2.5 * v), axis=1)
    band &= ~np.all((xy > first - 0.5 * v) & (xy < last + 0.5 * v), axis=1)
    if not band.any():
        return True
    cells, owner = np.unique(np.rint(xy[band] / v).astype(np.int64), axis=0, return_inverse=True)
    top = np.full(len(cells), -np.inf)
    np.maximum.at(top, owner.ravel(), holder_points[band, 2])
    below = np.count_nonzero(top < low[2] - v / 2)
    level = np.count_nonzero((top >= low[2] - v / 2) & (top <= high[2] - v / 2))
    return bool(below >= REST_MIN_BELOW * len(top) and level < REST_MAX_LEVEL * len(top))


REST_MIN_BELOW = 0.5
REST_MAX_LEVEL = 0.2
PART_MAX_THICKNESS_M = 0.10
PART_MIN_ASPECT = 2.5
PART_MIN_INSIDE = 0.8
PART_MIN_BELOW_TOP_M = 0.06


def _thickness(labels: np.ndarray, points: np.ndarray, n: int, voxel_size_m: float) -> np.ndarray:
    """Per segment, its smaller horizontal extent along its own principal axes (a turned board is thin too): a
    uniform spread of width w has variance w^2 / 12."""
    valid = labels >= 0
    x, y, owner = points[valid, 0], points[valid, 1], labels[valid]
    size = np.maximum(np.bincount(owner, minlength=n), 1)

    def mean(values: np.ndarray) -> np.ndarray:
        return np.bincount(owner, weights=values, minlength=n) / size

    mx, my = mean(x), mean(y)
    sxx, syy, sxy = mean(x * x) - mx**2, mean(y * y) - my**2, mean(x * y) - mx * my
    spread = np.sqrt(np.maximum(0.25 * (sxx - syy) ** 2 + sxy**2, 0.0))
    return np.sqrt(12.0 * np.maximum(0.5 * (sxx + syy) - spread, 0.0)) + voxel_size_m


def _box_overlaps(low: np.ndarray, high: np.ndarray, box_low: np.ndarray, box_high: np.ndarray) -> np.ndarray:
    """The overlap of the axis-aligned box ``box_low``..``box_high`` with every segment's (``low``..``high``), over
    the columns given (2: areas, 3: volumes)."""
    return np.prod(np.clip(np.minimum(high, box_high) - np.maximum(low, box_low), 0, None), axis=1)


def segment_members(labels: np.ndarray, count: int) -> list[np.ndarray]:
    """Voxel indices of each segment 0..count-1 (-1 labels belong to none): index k holds segment k."""
    order = np.argsort(labels, kind='stable')
    ordered = labels[order]
    starts = np.searchsorted(ordered, np.arange(count))
    ends = np.searchsorted(ordered, np.arange(count), side='right')
    return [order[s:e] for s, e in zip(starts, ends)]


def segment_bounds(labels: np.ndarray, points: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(low, high): the (n, 3) corners of each segment's axis-aligned box of points (inf / -inf for none)."""
    valid = labels >= 0
    low, high = np.full((n, 3), np.inf), np.full((n, 3), -np.inf)
    for axis in range(3):
        np.minimum.at(low[:, axis], labels[valid], points[valid, axis])
        np.maximum.at(high[:, axis], labels[valid], points[valid, axis])
    return low, high


def _follow(labels: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Labels after merging each segment into its ``parent`` (chains of merges followed to their end)."""
    for _ in range(8):
        parent = parent[parent]
    return np.where(labels >= 0, parent[np.maximum(labels, 0)], -1)
