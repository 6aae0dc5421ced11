"""Class-agnostic segmentation of the map's surface into objects, with no learned weights.

The input is the surface of the TSDF map (points, colours and normals from
:meth:`gpt4scene_ros.mapping.tsdf.SceneMap.surface`), one point per surface
voxel once :func:`surface_voxels` has merged the few points Open3D extracts
per voxel. The stages:

1. **Structure** (:func:`find_structure`): the floor (its height per 25 cm
   cell, so a slightly uneven or drifting floor still goes), the walls
   (vertical planes with nearly all of the map on one side) and the ceiling
   are taken out; objects are what is left.
2. **Patches**: connected components of the 26-neighbourhood graph of the
   remaining voxels after cutting every edge that crosses a concave crease
   (normals turning towards each other by more than ``concave_angle_deg``:
   a mug meets the table, a box meets another at a concave edge), a colour
   step in the fused colours (Lab, lightness down-weighted: shading changes
   lightness across the faces of one object) or an image-segmentation
   boundary voted into the map (:class:`BoundaryVotes`: Felzenszwalb's graph
   segmentation of colour frames, back-projected; it keeps the sharp edges
   that the fused colours blur, e.g. a magazine on a table).
3. **Merging**: tiny patches join the neighbour they share most boundary
   with; then adjacent regions merge greedily, most similar mean colour first
   (compared by :func:`shading_invariant_colors`), while their colours are
   close and their shared boundary is not mostly concave. This heals
   over-segmentation by texture, seams and shading.
4. Regions of at least ``min_instance_voxels`` voxels are the segments.

Voxel keys are ``rint(point / voxel_size)``: Open3D puts surface points at
multiples of the voxel size, so rounding (not flooring) keeps a flat surface
in one layer of keys.
"""

from __future__ import annotations

import heapq
import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.segmentation import felzenszwalb

from gpt4scene_ros.common.settings import InstanceConfig

logger = logging.getLogger(__name__)

_KEY_OFFSET = 1 << 20
_KEY_BITS = 21
_NEIGHBOUR_OFFSETS = [(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)
                      if (dx, dy, dz) > (0, 0, 0)]
"""Half of the 26-neighbourhood: each edge once."""
_LAB_WEIGHTS = np.array([0.5, 1.0, 1.0], np.float32)
"""Lightness counts half in colour distances: shading changes it across the faces of one object."""


def pack_keys(keys: np.ndarray) -> np.ndarray:
    """Integer voxel indices (Nx3, each within +-2^20) as one sortable int64 per voxel."""
    keys = np.asarray(keys, dtype=np.int64).reshape(-1, 3) + _KEY_OFFSET
    return (keys[:, 0] << (2 * _KEY_BITS)) | (keys[:, 1] << _KEY_BITS) | keys[:, 2]


def unpack_keys(packed: np.ndarray) -> np.ndarray:
    packed = np.asarray(packed, dtype=np.int64)
    mask = (1 << _KEY_BITS) - 1
    return np.stack([(packed >> (2 * _KEY_BITS)) & mask, (packed >> _KEY_BITS) & mask, packed & mask],
                    axis=1) - _KEY_OFFSET


def _packed_offset(dx: int, dy: int, dz: int) -> int:
    return (dx << (2 * _KEY_BITS)) + (dy << _KEY_BITS) + dz


def lookup(sorted_keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Index of each of ``wanted`` in ``sorted_keys`` (packed, ascending), -1 where absent."""
    if len(sorted_keys) == 0:
        return np.full(len(wanted), -1, np.int64)
    position = np.searchsorted(sorted_keys, wanted)
    position[position >= len(sorted_keys)] = 0
    return np.where(sorted_keys[position] == wanted, position, -1)


def shading_invariant_colors(colors_u8: np.ndarray) -> np.ndarray:
    """Nx3 float features of RGB colours whose distances ignore shading: chromaticity (r, g over r+g+b,
    unchanged when light scales all channels) scaled by 300, plus 10 * log brightness. Shading by a factor of 2
    moves them by about 7; a black object and a white one stay more than 13 apart. The small offsets damp the
    chromaticity noise of dark colours."""
    rgb = np.asarray(colors_u8, np.float64).reshape(-1, 3)
    total = rgb.sum(axis=1) + 30.0
    features = np.empty((len(rgb), 3))
    features[:, :2] = 300.0 * (rgb[:, :2] + 10.0) / total[:, None]
    features[:, 2] = 10.0 * np.log(total)
    return features


def lab_colors(colors_u8: np.ndarray) -> np.ndarray:
    """CIE Lab (L 0-100) of Nx3 uint8 RGB colours, float32."""
    rgb = (np.asarray(colors_u8, np.float32).reshape(-1, 1, 3) / 255.0)
    if len(rgb) == 0:
        return np.zeros((0, 3), np.float32)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).reshape(-1, 3)


@dataclass(frozen=True, eq=False)
class SurfaceVoxels:
    """One point per surface voxel, sorted by packed key, with the voxel adjacency graph."""

    keys: np.ndarray
    """Packed voxel keys (:func:`pack_keys`), ascending."""
    points: np.ndarray
    """Nx3 float64 map coordinates (mean of the voxel's surface points)."""
    colors: np.ndarray
    """Nx3 uint8 RGB."""
    normals: np.ndarray
    """Nx3 float64 unit normals (from the TSDF gradient)."""
    edges: np.ndarray
    """Mx2 int64: pairs of 26-adjacent voxels, each pair once."""
    voxel_size_m: float
    lab: np.ndarray = field(repr=False, default=None)

    def __len__(self) -> int:
        return len(self.keys)


def surface_voxels(points, colors, normals, voxel_size_m: float) -> SurfaceVoxels:
    """Merge the map's surface points (Nx3, colours Nx3 uint8, normals Nx3) into one per voxel."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    normals = np.asarray(normals, dtype=np.float64).reshape(-1, 3)
    if not (len(points) == len(colors) == len(normals)):
        raise ValueError(f'surface_voxels: {len(points)} points, {len(colors)} colours, {len(normals)} normals')
    finite = np.all(np.isfinite(points), axis=1) & np.all(np.isfinite(normals), axis=1)
    points, colors, normals = points[finite], colors[finite], normals[finite]
    packed = pack_keys(np.rint(points / voxel_size_m))
    keys, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)

    def mean(values):
        return np.stack([np.bincount(inverse, weights=values[:, c], minlength=len(keys))
                         for c in range(values.shape[1])], axis=1) / np.maximum(counts, 1)[:, None]

    mean_points = mean(points)
    mean_colors = np.clip(np.rint(mean(colors.astype(np.float64))), 0, 255).astype(np.uint8)
    mean_normals = mean(normals)
    length = np.linalg.norm(mean_normals, axis=1, keepdims=True)
    mean_normals = np.where(length > 1e-9, mean_normals / np.maximum(length, 1e-12), [0.0, 0.0, 1.0])
    edges = []
    for offset in _NEIGHBOUR_OFFSETS:
        found = lookup(keys, keys + _packed_offset(*offset))
        here = np.flatnonzero(found >= 0)
        edges.append(np.stack([here, found[here]], axis=1))
    edges = np.concatenate(edges) if edges else np.zeros((0, 2), np.int64)
    return SurfaceVoxels(keys, mean_points, mean_colors, mean_normals, edges.astype(np.int64), voxel_size_m,
                         lab_colors(mean_colors))


# -- image-segmentation boundaries voted into the map ----------------------------------------------------


class BoundaryVotes:
    """Per voxel: in how many voted frames it was seen, and in how many an image-segment boundary crossed it.

    Each view given to :meth:`add_view` is segmented with Felzenszwalb's graph
    method (scikit-image) at the view's reduced depth resolution; every pixel with depth is
    back-projected into the map and counts the voxel it lands in as seen, and
    as a boundary when the pixel lies on a segment border. Two more keys half a
    voxel before and behind along the ray take the same vote, so depth noise
    that moves a surface across a voxel border does not split its votes. The
    memory is bounded: beyond ``max_voxels`` entries the least-seen half is
    dropped.
    """

    def __init__(self, config: InstanceConfig, voxel_size_m: float, max_voxels: int = 4_000_000):
        self.config = config
        self.voxel_size_m = float(voxel_size_m)
        self.max_voxels = int(max_voxels)
        self.frames = 0
        self.clear()

    def clear(self) -> None:
        self.keys = np.zeros(0, np.int64)
        self.seen = np.zeros(0, np.int32)
        self.boundary = np.zeros(0, np.int32)
        self.frames = 0

    def __len__(self) -> int:
        return len(self.keys)

    def state(self) -> dict:
        """The votes as arrays (saved with the map, so a reloaded map segments as before)."""
        return {'vote_keys': self.keys, 'vote_seen': self.seen, 'vote_boundary': self.boundary}

    def restore(self, arrays: dict) -> None:
        """Replace the votes by a :meth:`state`; ValueError (votes unchanged) for malformed arrays."""
        try:
            keys = np.asarray(arrays['vote_keys'])
            seen = np.asarray(arrays['vote_seen'])
            boundary = np.asarray(arrays['vote_boundary'])
        except KeyError as error:
            raise ValueError(f'boundary votes: {error} missing') from None
        if not (keys.ndim == seen.ndim == boundary.ndim == 1 and len(keys) == len(seen) == len(boundary)) or \
                keys.dtype != np.int64 or seen.dtype.kind != 'i' or boundary.dtype.kind != 'i':
            raise ValueError('boundary votes: keys, seen and boundary must be integer arrays of one length')
        if len(keys) and (np.any(np.diff(keys) <= 0) or np.any(boundary > seen) or np.any(boundary < 0)):
            raise ValueError('boundary votes: keys must ascend and 0 <= boundary <= seen')
        self.keys, self.seen, self.boundary = keys, seen.astype(np.int32), boundary.astype(np.int32)

    def add_view(self, view) -> None:
        """Vote one :class:`gpt4scene_ros.objects.keyframes.FrameView` (colour, reduced depth, pose)."""
        seen, boundary = self._view_keys(view)
        if len(seen) == 0:
            return
        keys = np.concatenate([self.keys, seen])
        seen_votes = np.concatenate([self.seen, np.ones(len(seen), np.int32)])
        boundary_votes = np.concatenate([self.boundary, np.isin(seen, boundary, assume_unique=True).astype(np.int32)])
        merged, inverse = np.unique(keys, return_inverse=True)
        self.keys = merged
        self.seen = np.bincount(inverse, weights=seen_votes, minlength=len(merged)).astype(np.int32)
        self.boundary = np.bincount(inverse, weights=boundary_votes, minlength=len(merged)).astype(np.int32)
        self.frames += 1
        if len(self.keys) > self.max_voxels:
            keep = self.seen >= np.median(self.seen) + 1
            self.keys, self.seen, self.boundary = self.keys[keep], self.seen[keep], self.boundary[keep]

    def _view_keys(self, view):
        cfg = self.config
        height, width = view.depth_m.shape
        if height < 2 or width < 2:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        small = cv2.resize(view.color, (width, height), interpolation=cv2.INTER_AREA)
        segments = felzenszwalb(small, scale=cfg.vote_segment_scale, sigma=0.8, min_size=cfg.vote_segment_min_px)
        border = np.zeros(segments.shape, bool)
        horizontal = segments[:, 1:] != segments[:, :-1]
        vertical = segments[1:] != segments[:-1]
        border[:, 1:] |= horizontal
        border[:, :-1] |= horizontal
        border[1:] |= vertical
        border[:-1] |= vertical
        rows, cols, camera = view.pixel_rays()
        if len(rows) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        ray = camera / np.maximum(np.linalg.norm(camera, axis=1, keepdims=True), 1e-9)
        on_border = border[rows, cols]
        T = view.T_map_camera
        seen, crossed = [], []
        for shift in (-0.5, 0.0, 0.5):
            in_map = (camera + shift * self.voxel_size_m * ray) @ T[:3, :3].T + T[:3, 3]
            keys = pack_keys(np.rint(in_map / self.voxel_size_m))
            seen.append(keys)
            crossed.append(keys[on_border])
        return np.unique(np.concatenate(seen)), np.unique(np.concatenate(crossed))

    def boundary_fraction(self, keys: np.ndarray) -> np.ndarray:
        """Fraction of the voted frames seeing each voxel (packed keys) in which a boundary crossed it.

        0 for voxels seen in fewer than ``vote_min_frames`` frames (not enough evidence either way).
        """
        keys = np.asarray(keys, dtype=np.int64)
        if len(self.keys) == 0:
            return np.zeros(len(keys))
        index = lookup(self.keys, keys)
        seen = np.where(index >= 0, self.seen[np.maximum(index, 0)], 0)
        boundary = np.where(index >= 0, self.boundary[np.maximum(index, 0)], 0)
        return np.where(seen >= self.config.vote_min_frames, boundary / np.maximum(seen, 1), 0.0)


# -- structure: floor, walls, ceiling -------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Structure:
    """Which surface voxels are room structure, and the floor height under each voxel."""

    floor: np.ndarray
    walls: np.ndarray
    ceiling: np.ndarray
    floor_height_m: np.ndarray
    """Per voxel: the local floor height under it (the global floor level where the floor is unseen)."""
    wall_planes: tuple = ()
    """(normal_xy, offset_m) of each wall: points p on it have normal_xy . p_xy = offset_m."""

    @property
    def mask(self) -> np.ndarray:
        return self.floor | self.walls | self.ceiling


def find_structure(voxels: SurfaceVoxels, config: InstanceConfig) -> Structure:
    """Floor, walls and ceiling of the map (see the module docstring)."""
    count = len(voxels)
    none = np.zeros(count, bool)
    if count == 0:
        return Structure(none, none, none, np.zeros(0))
    points, normals, v = voxels.points, voxels.normals, voxels.voxel_size_m
    floor, floor_height = _find_floor(points, normals, v, config)
    walls, planes = _find_walls(points, normals, v, config, exclude=floor)
    ceiling = _find_ceiling(points, normals, v, config, exclude=floor | walls)
    return Structure(floor, walls & ~floor, ceiling, floor_height, tuple(planes))


def _find_floor(points, normals, v, config):
    z = points[:, 2]
    up = normals[:, 2] > 0.8
    min_voxels = config.min_structure_area_m2 / (v * v)
    floor_level = None
    if up.sum() >= min_voxels:
        bins = np.arange(z[up].min(), z[up].max() + v, v / 2)
        if len(bins) >= 2:
            histogram, edges = np.histogram(z[up], bins=bins)
            # Two neighbouring half-voxel bins hold one flat layer.
            pairs = histogram[:-1] + histogram[1:] if len(histogram) > 1 else histogram
            dense = np.flatnonzero(pairs >= min_voxels)
            if len(dense):
                floor_level = float(edges[dense[0]] + v / 2)
    if floor_level is None:
        return np.zeros(len(z), bool), np.full(len(z), z.min() - v if len(z) else 0.0)
    # The floor's height per cell: a drifting reconstruction or an uneven floor is not one plane.
    cell = config.floor_cell_m
    near = up & (np.abs(z - floor_level) < config.floor_tolerance_m)
    cells = np.floor(points[:, :2] / cell).astype(np.int64)
    cells -= cells.min(axis=0)
    linear = cells[:, 0] * (cells[:, 1].max() + 1) + cells[:, 1]
    heights = np.full(linear.max() + 1, floor_level)
    chosen = np.flatnonzero(near)
    if len(chosen):
        order = chosen[np.argsort(linear[chosen], kind='stable')]
        unique, starts, counts = np.unique(linear[order], return_index=True, return_counts=True)
        for cell_id, start, n in zip(unique, starts, counts):
            if n >= 8:
                heights[cell_id] = float(np.median(z[order[start:start + n]]))
    local = heights[linear]
    above = z - local
    floor = ((above < 2.0 * v) & (normals[:, 2] > 0.6)) | (above < 0.75 * v)
    return floor, local


def _find_walls(points, normals, v, config, exclude):
    horizontal = (np.abs(normals[:, 2]) < 0.3) & ~exclude
    walls = np.zeros(len(points), bool)
    planes = []
    remaining = horizontal.copy()
    min_voxels = config.min_structure_area_m2 / (v * v)
    bin_deg = 4.0
    n_angle_bins = int(round(360.0 / bin_deg))
    for _ in range(12):
        index = np.flatnonzero(remaining)
        if len(index) < min_voxels:
            break
        # Hough votes over (normal direction, signed offset): normals point into the room, so each
        # wall is one peak. Neighbouring bins are summed (wall normals seen at grazing angles scatter).
        theta = np.mod(np.arctan2(normals[index, 1], normals[index, 0]), 2 * np.pi)
        angle_bin = np.floor(theta / math.radians(bin_deg)).astype(np.int64) % n_angle_bins
        centre = (angle_bin + 0.5) * math.radians(bin_deg)
        offset = points[index, 0] * np.cos(centre) + points[index, 1] * np.sin(centre)
        offset_bin = np.floor(offset / v).astype(np.int64)
        offset_bin -= offset_bin.min()
        votes = np.zeros((n_angle_bins, offset_bin.max() + 2))
        np.add.at(votes, (angle_bin, offset_bin), 1)
        smoothed = votes + np.roll(votes, 1, axis=0) + np.roll(votes, -1, axis=0)
        smoothed = smoothed[:, :-1] + smoothed[:, 1:]
        best_angle, best_offset = np.unravel_index(np.argmax(smoothed), smoothed.shape)
        if smoothed[best_angle, best_offset] < min_voxels:
            break
        angle_gap = np.abs((angle_bin - best_angle + n_angle_bins // 2) % n_angle_bins - n_angle_bins // 2)
        candidates = index[(angle_gap <= 1) & (np.abs(offset_bin - best_offset - 0.5) <= 1.5)]
        xy = points[candidates, :2] - points[candidates, :2].mean(axis=0)
        _, vectors = np.linalg.eigh(xy.T @ xy)
        normal_xy = vectors[:, 0]
        plane_offset = float(np.median(points[candidates, :2] @ normal_xy))
        distance = points[:, :2] @ normal_xy - plane_offset
        facing = np.abs(normals[:, :2] @ normal_xy) > 0.7
        inliers = (np.abs(distance) < 2 * v) & horizontal & facing
        remaining[candidates] = False
        remaining &= ~inliers
        z = points[inliers, 2]
        if len(z) < min_voxels:
            continue
        height = float(np.percentile(z, 98) - np.percentile(z, 2))
        side = np.sign(np.median(distance)) or 1.0
        behind = float(np.mean(distance * side < -3 * v))
        if height >= config.min_wall_height_m and behind <= config.max_points_behind_wall:
            walls |= inliers | ((np.abs(distance) < 0.75 * v) & ~exclude)
            planes.append((tuple(float(c) for c in normal_xy * side), float(plane_offset * side)))
    return walls, planes


def _find_ceiling(points, normals, v, config, exclude):
    down = (normals[:, 2] < -0.8) & ~exclude
    min_voxels = config.min_structure_area_m2 / (v * v)
    if down.sum() < min_voxels:
        return np.zeros(len(points), bool)
    z = points[down, 2]
    histogram, edges = np.histogram(z, bins=np.arange(z.min(), z.max() + 2 * v, v))
    dense = np.flatnonzero(histogram >= min_voxels)
    if len(dense) == 0 or edges[dense[-1]] < config.min_ceiling_height_m:
        return np.zeros(len(points), bool)
    level = float(edges[dense[-1]])
    return (points[:, 2] > level - 2 * v) & (normals[:, 2] < -0.5) & ~exclude


# -- patches and region merging ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Segmentation:
    """The result of :func:`segment_surface`."""

    voxels: SurfaceVoxels
    structure: Structure
    labels: np.ndarray
    """Per voxel: segment index 0..n-1, or -1 (structure, or too small to be an object)."""
    count: int
    boundary_fraction: np.ndarray = field(repr=False, default=None)

    def members(self) -> list[np.ndarray]:
        """Voxel indices of each segment, largest first is not implied: index k holds segment k."""
        order = np.argsort(self.labels, kind='stable')
        labels = self.labels[order]
        starts = np.searchsorted(labels, np.arange(self.count))
        ends = np.searchsorted(labels, np.arange(self.count), side='right')
        return [order[s:e] for s, e in zip(starts, ends)]


def _edge_evidence(voxels: SurfaceVoxels, config: InstanceConfig):
    """Per edge: colour distance (weighted Lab), whether it crosses a concave crease, a convex one, and a convex
    ridge that passes the sanity check below."""
    i, j = voxels.edges[:, 0], voxels.edges[:, 1]
    lab = voxels.lab * _LAB_WEIGHTS
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
    ridge = np.stack([n_i[:, 1] * n_j[:, 2] - n_i[:, 2] * n_j[:, 1], n_i[:, 2] * n_j[:, 0] - n_i[:, 0] * n_j[:, 2],
                      n_i[:, 0] * n_j[:, 1] - n_i[:, 1] * n_j[:, 0]], axis=1)
    ridge_length = np.sqrt(np.einsum('ij,ij->i', ridge, ridge))
    along_ridge = np.abs(np.einsum('ij,ij->i', ridge, direction)) / np.maximum(ridge_length, 1e-9)
    convex = (convexity > 0.05) & (cos_angle < math.cos(math.radians(config.convex_angle_deg)))
    return color_distance, concave, convex, convex & (along_ridge < 0.5)


def _components(count, edges, keep_edge) -> np.ndarray:
    kept = edges[keep_edge]
    graph = coo_matrix((np.ones(len(kept), np.int8), (kept[:, 0], kept[:, 1])), shape=(count, count))
    return connected_components(graph, directed=False)[1]


def _absorb_tiny(labels, features, edges, active_edge, min_size, color_scale, rounds=4):
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
        means = np.stack([np.bincount(labels[valid], weights=features[valid, c], minlength=n)
                          for c in range(features.shape[1])], axis=1) / np.maximum(size, 1)[:, None]
        score = shared / (1.0 + np.linalg.norm(means[source] - means[target], axis=1) / color_scale)
        order = np.lexsort((size[target], score, source))   # per source: best score, then largest last
        source, target = source[order], target[order]
        last = np.r_[source[1:] != source[:-1], True]
        mapping = np.arange(n)
        mapping[source[last]] = target[last]
        for _ in range(8):                                     # follow chains of tiny regions
            mapping = mapping[mapping]
        labels = np.where(labels >= 0, mapping[np.maximum(labels, 0)], -1)
    return labels


def _merge_regions(labels, features, edges, active_edge, concave, convex, config):
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
    sums = np.stack([np.bincount(labels[valid], weights=features[valid, c], minlength=n)
                     for c in range(features.shape[1])], axis=1)
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
    neighbours = [dict() for _ in range(n)]
    for x, y, s, c, r in zip((pair // n).tolist(), (pair % n).tolist(), shared.tolist(), creased.tolist(),
                             ridged.tolist()):
        record = [s, c, r]
        neighbours[x][y] = record
        neighbours[y][x] = record
    size_list, sum_list = size.tolist(), sums.tolist()
    parent = list(range(n))
    version = [0] * n
    limit = config.merge_color_distance
    max_creased = config.merge_max_concave_fraction

    def mergeable(x, y):
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


def _merge_across_creases(labels, features, edges, active_edge, config):
    """Merge neighbours of the same colour whatever their border: parts of one piece of furniture meet at
    concave creases (a backrest and its seat, a sofa's back and its seat). Objects that stand on one another
    are split again afterwards (:func:`_split_resting`)."""
    valid = labels >= 0
    if not valid.any():
        return labels
    n = int(labels.max()) + 1
    a, b = labels[edges[active_edge, 0]], labels[edges[active_edge, 1]]
    across = a != b
    pair, shared = np.unique(np.minimum(a[across], b[across]).astype(np.int64) * n + np.maximum(a[across], b[across]),
                             return_counts=True)
    size = np.bincount(labels[valid], minlength=n).astype(np.float64)
    means = np.stack([np.bincount(labels[valid], weights=features[valid, c], minlength=n)
                      for c in range(features.shape[1])], axis=1) / np.maximum(size, 1)[:, None]
    first, second = pair // n, pair % n
    distance = np.linalg.norm(means[first] - means[second], axis=1)
    close = (distance <= config.crease_merge_color_distance) & (shared >= 3) & \
        (np.minimum(size[first], size[second]) >= config.min_instance_voxels)
    graph = coo_matrix((np.ones(int(close.sum())), (first[close], second[close])), shape=(n, n))
    roots = connected_components(graph, directed=False)[1]
    return np.where(valid, roots[np.maximum(labels, 0)], -1)


def _merge_hanging_parts(labels, features, voxels: SurfaceVoxels, config):
    """Merge a segment into the one just above its top when their colours are close: table and chair legs end
    under the top they hold, where the camera never looks, so their surfaces do not touch in the map."""
    valid = labels >= 0
    if not valid.any():
        return labels
    n = int(labels.max()) + 1
    size = np.bincount(labels[valid], minlength=n).astype(np.float64)
    means = np.stack([np.bincount(labels[valid], weights=features[valid, c], minlength=n)
                      for c in range(features.shape[1])], axis=1) / np.maximum(size, 1)[:, None]
    z = voxels.points[:, 2]
    v = voxels.voxel_size_m
    top_of = np.full(n, -np.inf)
    np.maximum.at(top_of, labels[valid], z[valid])
    top_layer = valid & (z >= top_of[np.maximum(labels, 0)] - 0.5 * v)
    index = np.flatnonzero(top_layer)
    above = np.full(len(index), -1)
    for dz in (1, 2, 3, 4):
        found = lookup(voxels.keys, voxels.keys[index] + dz)
        hit = (above < 0) & (found >= 0)
        other = np.where(found >= 0, labels[np.maximum(found, 0)], -1)
        above = np.where(hit & (other >= 0) & (other != labels[index]), other, above)
    parent = np.arange(n)
    owners = labels[index]
    for segment in np.unique(owners):
        mine = owners == segment
        holders = above[mine]
        holders = holders[holders >= 0]
        if len(holders) < 0.5 * mine.sum():
            continue
        holder = int(np.bincount(holders).argmax())
        if size[holder] > size[segment] and np.linalg.norm(means[holder] - means[segment]) <= \
                config.merge_color_distance:
            parent[segment] = holder
    for _ in range(8):
        parent = parent[parent]
    return np.where(valid, parent[np.maximum(labels, 0)], -1)


def _convex_hull_mask(cells: np.ndarray, shape) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    if len(cells) >= 3:
        hull = cv2.convexHull(cells[:, ::-1].astype(np.int32).reshape(-1, 1, 2))
        cv2.fillConvexPoly(mask, hull, 1)
    mask[cells[:, 0], cells[:, 1]] = 1
    return mask.astype(bool)


def _split_resting(labels, voxels: SurfaceVoxels, edges, keep_edge, config):
    """Split off, in every segment, what rests on one of its horizontal surfaces.

    In each segment the upward-facing surfaces of at least ``min_support_voxels``
    (a table top, a crate's lid, a seat) are set aside and the rest falls apart
    into bodies. A body whose bottom lies on such a surface, with its footprint
    inside the surface's convex hull (a mug on the table, a box on a crate;
    not a backrest beside the seat's exposed top), is an object of its own. Each
    surface goes back to the body under it.
    """
    v = voxels.voxel_size_m
    points, normals = voxels.points, voxels.normals
    next_label = int(labels.max()) + 1 if (labels >= 0).any() else 0
    labels = labels.copy()
    order = np.argsort(labels, kind='stable')
    sorted_labels = labels[order]
    # Each segment's own edges, found once: edges within one segment, grouped by it.
    within = (labels[edges[:, 0]] == labels[edges[:, 1]]) & (labels[edges[:, 0]] >= 0)
    edge_index = np.flatnonzero(within)
    edge_index = edge_index[np.argsort(labels[edges[edge_index, 0]], kind='stable')]
    edge_labels = labels[edges[edge_index, 0]]
    local = np.full(len(labels), -1)
    for segment in np.unique(labels[labels >= 0]):
        members = order[np.searchsorted(sorted_labels, segment):np.searchsorted(sorted_labels, segment, side='right')]
        if len(members) < 2 * config.min_instance_voxels:
            continue
        local[members] = np.arange(len(members))
        mine = edge_index[np.searchsorted(edge_labels, segment):np.searchsorted(edge_labels, segment, side='right')]
        seg_edges = local[edges[mine]]
        up = normals[members, 2] > 0.9
        z = points[members, 2]
        flat = up[seg_edges[:, 0]] & up[seg_edges[:, 1]] & (np.abs(z[seg_edges[:, 0]] - z[seg_edges[:, 1]]) <= 0.6 * v)
        surfaces = _components(len(members), seg_edges, flat)
        surfaces = np.where(up, surfaces, -1)
        sizes = np.bincount(surfaces[surfaces >= 0], minlength=len(members)) if up.any() else np.zeros(1, int)
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
        bodies = np.where(is_support, -1, _components(len(members), seg_edges, body_edge))
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
            touching = seg_edges[(is_support[seg_edges[:, 0]] & (surfaces[seg_edges[:, 0]] == support))
                                 | (is_support[seg_edges[:, 1]] & (surfaces[seg_edges[:, 1]] == support))]
            neighbours = np.unique(bodies[touching.ravel()])
            for body in neighbours[neighbours >= 0]:
                if body in resting:
                    continue
                in_body = bodies == body
                body_z = z[in_body]
                if body_sizes[np.searchsorted(body_ids, body)] < config.min_instance_voxels or \
                        not (height - v <= body_z.min() <= height + 2 * v) or np.median(body_z) <= height + v:
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
                hull = cv2.erode(_convex_hull_mask(cells_support - origin, shape).astype(np.uint8),
                                 np.ones((3, 3), np.uint8)).astype(bool)
                inside_share = np.mean(hull[cells_body[:, 0] - origin[0], cells_body[:, 1] - origin[1]])
                if inside_share >= 0.7:
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


def segment_surface(voxels: SurfaceVoxels, config: InstanceConfig, votes: BoundaryVotes | None = None
                    ) -> Segmentation:
    """Split the map's surface into object segments (see the module docstring)."""
    structure = find_structure(voxels, config)
    count = len(voxels)
    boundary = votes.boundary_fraction(voxels.keys) if votes is not None and len(votes) else np.zeros(count)
    if count == 0:
        return Segmentation(voxels, structure, np.zeros(0, np.int64), 0, boundary)
    objects = ~structure.mask
    edges = voxels.edges
    color_distance, concave, convex, ridge = _edge_evidence(voxels, config)
    active = objects[edges[:, 0]] & objects[edges[:, 1]]
    border = np.maximum(boundary[edges[:, 0]], boundary[edges[:, 1]]) > config.boundary_cut_fraction
    # Objects are locally convex (LCCP): a convex crease never separates, whatever the colours do across it
    # (the faces of one object are shaded differently); on flat surfaces colour and image boundaries decide.
    keep = active & ~concave & (ridge | ((color_distance <= config.patch_color_step) & ~border))
    labels = np.where(objects, _components(count, edges, keep), -1)
    features = shading_invariant_colors(voxels.colors)
    labels = _absorb_tiny(labels, features, edges, active, config.tiny_patch_voxels, config.merge_color_distance)
    labels = _merge_regions(labels, features, edges, active, concave, convex, config)
    labels = _merge_across_creases(labels, features, edges, active, config)
    labels = _merge_hanging_parts(labels, features, voxels, config)
    labels = _split_resting(labels, voxels, edges, keep, config)
    sizes = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(0, np.int64)
    big = [k for k in np.flatnonzero(sizes >= config.min_instance_voxels)
           if not _structure_remnant(voxels.points[labels == k], structure, voxels.voxel_size_m,
                                     structure.floor_height_m[labels == k])]
    mapping = np.full(len(sizes) + 1, -1)       # the extra entry keeps the lookup valid for an empty map
    mapping[big] = np.arange(len(big))
    labels = np.where(labels >= 0, mapping[np.maximum(labels, 0)], -1)
    return Segmentation(voxels, structure, labels, len(big), boundary)


def _structure_remnant(points, structure: Structure, voxel_size_m: float, floor_height) -> bool:
    """A thin sheet lying on the floor or on a wall: what structure removal left along its edges (the floor's
    border at a wall, a poster), not an object."""
    sheet = 1.5 * voxel_size_m
    low, high = np.percentile(points[:, 2], [2, 98])
    if high - low < sheet and low <= np.median(floor_height) + 2 * voxel_size_m:
        return True
    for normal_xy, offset in structure.wall_planes:
        distance = points[:, :2] @ np.asarray(normal_xy) - offset
        near, far = np.percentile(distance, [2, 98])
        if far - near < sheet and near < 2.5 * voxel_size_m:
            return True
    return False
