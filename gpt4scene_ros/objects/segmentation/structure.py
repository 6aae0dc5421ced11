"""Room structure in the map's surface, taken out before segmenting objects (:func:`find_structure`).

The floor is found with its height per ``floor_cell_m`` cell, so a slightly
uneven or drifting floor still goes; the walls are vertical planes with nearly
all of the map on one side; the ceiling is the highest dense downward-facing
layer. :func:`is_structure_remnant` tells the thin sheets that structure
removal leaves along its edges from objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.objects.voxels import SurfaceVoxels


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
        """Per voxel: floor, wall or ceiling."""
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


def _find_floor(
    points: np.ndarray, normals: np.ndarray, v: float, config: InstanceConfig
) -> tuple[np.ndarray, np.ndarray]:
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
                heights[cell_id] = float(np.median(z[order[start : start + n]]))
    local = heights[linear]
    above = z - local
    floor = ((above < 2.0 * v) & (normals[:, 2] > 0.6)) | (above < 0.75 * v)
    return floor, local


def _find_walls(
    points: np.ndarray, normals: np.ndarray, v: float, config: InstanceConfig, exclude: np.ndarray
) -> tuple[np.ndarray, list]:
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


def _find_ceiling(
    points: np.ndarray, normals: np.ndarray, v: float, config: InstanceConfig, exclude: np.ndarray
) -> np.ndarray:
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


WALL_SHEET_MAX_DEPTH_VOXELS = 5.0
"""How far a sheet along a wall, not facing out of it, may reach into the room and still be a remnant: noisy
depth smears a wall's edge 3-4 voxels out (measured on the generated rooms with depth noise)."""

CEILING_SHEET_MIN_HEIGHT_M = 2.0
"""A flat horizontal sheet this high above the floor is a piece of ceiling (no object's top is seen there)."""


def is_structure_remnant(
    points: np.ndarray,
    structure: Structure,
    voxel_size_m: float,
    floor_height: np.ndarray,
    normals: np.ndarray | None = None,
) -> bool:
    """A thin sheet lying on the floor, under the ceiling or on a wall: what structure removal left along its
    edges (the floor's border at a wall, a strip of ceiling, a poster), not an object. With ``normals``, a
    sheet along a wall up to ``WALL_SHEET_MAX_DEPTH_VOXELS`` deep whose surface does not face out of the wall counts
    too."""
    sheet = 1.5 * voxel_size_m
    low, high = np.percentile(points[:, 2], [2, 98])
    if high - low < sheet:
        above_floor = low - np.median(floor_height)
        if above_floor <= 2 * voxel_size_m or above_floor >= CEILING_SHEET_MIN_HEIGHT_M:
            return True
    for normal_xy, offset in structure.wall_planes:
        distance = points[:, :2] @ np.asarray(normal_xy) - offset
        near, far = np.percentile(distance, [2, 98])
        if far - near < sheet and near < 2.5 * voxel_size_m:
            return True
        if (
            normals is not None
            and far - near < WALL_SHEET_MAX_DEPTH_VOXELS * voxel_size_m
            and near < 3.5 * voxel_size_m
        ):
            # A sheet along a wall whose surface does not face out of it: the curtain of flying depth pixels
            # between an object's edge and the wall behind it, the strip of a sofa's back top that the wall's
            # flying pixels cut off (a picture or a screen faces out).
            facing = np.abs(normals[:, :2] @ np.asarray(normal_xy)) > 0.8
            if np.mean(facing) < 0.3:
                return True
    return False
