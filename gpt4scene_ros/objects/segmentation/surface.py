"""Class-agnostic segmentation of the map's surface into objects, with no learned weights.

The input is the surface of the TSDF map (points, colours and normals from
:meth:`gpt4scene_ros.mapping.tsdf.SceneMap.surface`), one point per surface
voxel once :func:`gpt4scene_ros.objects.voxels.surface_voxels` has merged the
few points Open3D extracts per voxel (voxel keys: :mod:`gpt4scene_ros.objects.voxels`).
:func:`segment_surface` runs the stages:

1. **Structure** (:func:`gpt4scene_ros.objects.segmentation.structure.find_structure`):
   the floor (its height per 25 cm cell, so a slightly uneven or drifting
   floor still goes), the walls (vertical planes with nearly all of the map on
   one side) and the ceiling are taken out; objects are what is left.
2. **Patches** (:mod:`gpt4scene_ros.objects.segmentation.regions`): connected
   components of the 26-neighbourhood graph of the remaining voxels after
   cutting every edge that crosses a concave crease (normals turning towards
   each other by more than ``concave_angle_deg``: a mug meets the table, a box
   meets another at a concave edge), a colour step in the fused colours (Lab,
   lightness down-weighted: shading changes lightness across the faces of one
   object) or an image-segmentation boundary voted into the map
   (:class:`gpt4scene_ros.objects.segmentation.votes.BoundaryVotes`:
   Felzenszwalb's graph segmentation of colour frames, back-projected; it
   keeps the sharp edges that the fused colours blur, e.g. a magazine on a
   table).
3. **Merging** (:mod:`gpt4scene_ros.objects.segmentation.regions`): tiny
   patches join the neighbour they share most boundary with; then adjacent
   regions merge greedily, most similar mean colour first (compared by
   :func:`gpt4scene_ros.objects.segmentation.colors.shading_invariant_colors`),
   while their colours are close and their shared boundary is not mostly
   concave. This heals over-segmentation by texture, seams and shading.
   Parts of one piece of furniture then merge across creases and with the top
   they hang under, and what rests on a horizontal surface, or stands beside a top straddling its height (a
   chair's back tucked against a table's edge), is split off again
   (:mod:`gpt4scene_ros.objects.segmentation.resting`); slabs join what they
   cover, thin parts (a chair back, a rim, a shelf board) the segment whose
   box holds them, unless they rest on it (a book on a table); a small upright
   sliver joins the neighbour it continues without a crease (a box's corner
   edge whose colour blends with the box beside it); a flat stack (a book on a
   larger book) is split in two.
4. Regions of at least ``min_instance_voxels`` voxels are the segments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.objects.segmentation.colors import shading_invariant_colors
from gpt4scene_ros.objects.segmentation.regions import (
    absorb_tiny,
    components,
    edge_evidence,
    merge_across_creases,
    merge_covering_slabs,
    merge_enclosed_parts,
    merge_hanging_parts,
    merge_regions,
    merge_smooth_slivers,
    segment_members,
)
from gpt4scene_ros.objects.segmentation.resting import split_resting, split_stacked, split_tucked
from gpt4scene_ros.objects.segmentation.structure import Structure, find_structure, is_structure_remnant
from gpt4scene_ros.objects.segmentation.votes import BoundaryVotes
from gpt4scene_ros.objects.voxels import SurfaceVoxels


@dataclass(frozen=True, eq=False)
class Segmentation:
    """The result of :func:`segment_surface`."""

    voxels: SurfaceVoxels
    structure: Structure
    labels: np.ndarray
    """Per voxel: segment index 0..n-1, or -1 (structure, or too small to be an object)."""
    count: int
    boundary_fraction: np.ndarray | None = field(repr=False, default=None)

    def members(self) -> list[np.ndarray]:
        """Voxel indices of each segment, largest first is not implied: index k holds segment k."""
        return segment_members(self.labels, self.count)


def segment_surface(voxels: SurfaceVoxels, config: InstanceConfig, votes: BoundaryVotes | None = None) -> Segmentation:
    """Split the map's surface into object segments (see the module docstring)."""
    structure = find_structure(voxels, config)
    count = len(voxels)
    boundary = votes.boundary_fraction(voxels.keys) if votes is not None and len(votes) else np.zeros(count)
    if count == 0:
        return Segmentation(voxels, structure, np.zeros(0, np.int64), 0, boundary)
    objects = ~structure.mask
    edges = voxels.edges
    color_distance, concave, convex, ridge = edge_evidence(voxels, config)
    active = objects[edges[:, 0]] & objects[edges[:, 1]]
    border = np.maximum(boundary[edges[:, 0]], boundary[edges[:, 1]]) > config.boundary_cut_fraction
    # Objects are locally convex (LCCP): a convex crease never separates, whatever the colours do across it
    # (the faces of one object are shaded differently); on flat surfaces colour and image boundaries decide.
    keep = active & ~concave & (ridge | ((color_distance <= config.patch_color_step) & ~border))
    labels = np.where(objects, components(count, edges, keep), -1)
    features = shading_invariant_colors(voxels.colors)
    labels = absorb_tiny(labels, features, edges, active, config.tiny_patch_voxels, config.merge_color_distance)
    labels = merge_regions(labels, features, edges, active, concave, convex, config)
    labels = merge_across_creases(labels, features, edges, active, config)
    labels = merge_hanging_parts(labels, features, voxels, config)
    labels = split_resting(labels, voxels, edges, keep, config)
    labels = split_tucked(labels, voxels, edges, structure.floor_height_m, config)
    labels = merge_covering_slabs(labels, voxels)
    labels = merge_enclosed_parts(labels, voxels)
    labels = merge_smooth_slivers(labels, voxels, edges, active, concave)
    labels = split_stacked(labels, voxels, config)
    sizes = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(0, np.int64)
    big = [
        k
        for k in np.flatnonzero(sizes >= config.min_instance_voxels)
        if not is_structure_remnant(
            voxels.points[labels == k],
            structure,
            voxels.voxel_size_m,
            structure.floor_height_m[labels == k],
            voxels.normals[labels == k],
        )
    ]
    mapping = np.full(len(sizes) + 1, -1)  # the extra entry keeps the lookup valid for an empty map
    mapping[big] = np.arange(len(big))
    labels = np.where(labels >= 0, mapping[np.maximum(labels, 0)], -1)
    return Segmentation(voxels, structure, labels, len(big), boundary)
