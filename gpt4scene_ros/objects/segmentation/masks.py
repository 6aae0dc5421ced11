"""2D instance masks fused onto the map's voxels into persistent 3D instances.

A mask source gives, per frame, a label image (uint16, 0 = no mask; the same number in two frames need not be
the same object), optionally with a label and score per mask: a segmentation model (SAM, Mask2Former, a YOLO-seg
node over ROS) or a folder of precomputed masks. :class:`MaskFusion` keeps, per instance, how often each voxel
key was seen inside one of its masks, and per voxel how often any masked frame saw it. Nothing is recomputed
from scratch: each frame changes only what it saw.

Per frame (:meth:`MaskFusion.add_view`):

1. each mask's depth pixels, less a one-pixel ring along its border (where a mask's pixels take the depth of
   the background behind it), are back-projected with the frame's pose and snapped to the map's surface voxels;
   a mask mostly on the floor, walls or ceiling, or covering most of the image, is rejected as structure;
2. masks are associated with instances by the IoU of the mask's voxels with the part of each instance this frame
   sees (OVIR-3D's visible-part IoU), one to one, best first; a mask left over starts an instance;
3. view consensus (MaskClustering): two instances that this frame shows each mostly inside one mask are counted
   *together*; each mostly inside different masks, *apart*.

Per update (:meth:`MaskFusion.consolidate`, then :meth:`MaskFusion.segment`): instances together in most frames
that see both merge, never where separation evidence is strong; an instance that owns little of its own voxels
is a duplicate of the instance that owns them and joins it (unless they were seen apart); voxels rarely seen as
part of their instance are dropped, instances are split at gaps, and only instances observed in several frames
are published.
"""

from __future__ import annotations

import collections
import logging
import threading

import numpy as np

from gpt4scene_ros.common.masks import FrameMasks, MaskError, check_masks, stamp_key
from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.objects.detectors import detection_masks
from gpt4scene_ros.objects.keyframes import FrameView
from gpt4scene_ros.objects.segmentation.regions import components
from gpt4scene_ros.objects.segmentation.structure import Structure
from gpt4scene_ros.objects.voxels import SurfaceVoxels, lookup, packed_offset

logger = logging.getLogger(__name__)


def reduce_masks(labels: np.ndarray, step: int) -> np.ndarray:
    """The label image at a view's reduced depth grid (the pixels ``make_view`` keeps), each mask's border ring
    set to 0: a border pixel's depth often belongs to what is behind the object."""
    offset = (step - 1) // 2
    reduced = np.ascontiguousarray(labels[offset::step, offset::step])
    border = np.zeros(reduced.shape, bool)
    border[1:, :] |= reduced[1:, :] != reduced[:-1, :]
    border[:-1, :] |= reduced[:-1, :] != reduced[1:, :]
    border[:, 1:] |= reduced[:, 1:] != reduced[:, :-1]
    border[:, :-1] |= reduced[:, :-1] != reduced[:, 1:]
    return np.where(border, 0, reduced).astype(np.uint16)


MASK_COUNTS = ('mask_views', 'masks_rejected_as_structure', 'mask_errors', 'masks_unused', 'mask_instances_merged')
"""What the diagnostics show of the mask fusion (counts since the start)."""
MASKS_WAITING = 64
"""Masks kept for a keyframe candidate of their stamp (about 2 s of a 30 Hz camera)."""


class ViewMasks:
    """Which keyframe candidates have masks to fuse: their own (a folder), masks that came on their own with the
    candidate's stamp (a masks topic: later than the colour image), or a segmentation detector's; each view's
    once. Views are told apart by identity (a revisit makes new ones). Thread-safe."""

    def __init__(self) -> None:
        self._by_stamp: collections.OrderedDict[int, FrameMasks] = collections.OrderedDict()
        self._fused: set[int] = set()
        self._lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()

    def add(self, stamp_s: float, masks: FrameMasks) -> None:
        """Masks for the candidate of ``stamp_s``; masks of frames that were no candidates (the camera had not
        moved enough) are counted as unused when they age out."""
        with self._lock:
            self._by_stamp[stamp_key(stamp_s)] = masks
            while len(self._by_stamp) > MASKS_WAITING:
                self._by_stamp.popitem(last=False)
                self.counts['masks_unused'] += 1

    def take(self, views: list[FrameView], live: list[FrameView]) -> list[tuple[FrameView, FrameMasks]]:
        """(view, masks) of ``views`` with masks not fused yet; ``live``: the views still kept (the pool)."""
        found = []
        with self._lock:
            for view in {id(v): v for v in views}.values():
                if id(view) in self._fused:
                    continue
                masks = view.masks or self._by_stamp.pop(stamp_key(view.stamp_s), None)
                if masks is not None and masks is not view.masks:
                    try:
                        check_masks(masks.labels, view.color.shape[:2])
                    except MaskError as error:
                        self.counts['mask_errors'] += 1
                        logger.warning('masks of frame %d (stamp %.3f) not used: %s', view.index, view.stamp_s, error)
                        continue
                if masks is not None:
                    self._fused.add(id(view))
                    found.append((view, masks))
            self._fused &= {id(view) for view in live}
        return found

    def take_detected(self, detections: list) -> list[tuple[FrameView, FrameMasks]]:
        """A segmentation detector's masks ((view, detections) pairs) of views that have no others."""
        found = []
        for view, detected in detections:
            if id(view) in self._fused:
                continue
            masks = detection_masks(detected, view.color.shape)
            if masks is not None:
                self._fused.add(id(view))
                found.append((view, masks))
        return found

    def clear(self) -> None:
        with self._lock:
            self._by_stamp.clear()
            self._fused.clear()


class _Instance:
    __slots__ = ('keys', 'counts', 'observations', 'label_votes', 'new_label_votes')

    def __init__(self) -> None:
        self.keys = np.zeros(0, np.int64)
        self.counts = np.zeros(0, np.int32)
        self.observations = 0
        self.label_votes: dict[str, float] = collections.defaultdict(float)
        self.new_label_votes: dict[str, float] = collections.defaultdict(float)

    def add(self, keys: np.ndarray, counts: np.ndarray) -> None:
        self.keys, self.counts = _add_counts(self.keys, self.counts, keys, counts)


def _add_counts(
    keys: np.ndarray, counts: np.ndarray, new_keys: np.ndarray, new_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (keys, counts) plus (new_keys, new_counts), summed per key."""
    all_keys = np.concatenate([keys, new_keys])
    merged, inverse = np.unique(all_keys, return_inverse=True)
    total = np.bincount(inverse, weights=np.concatenate([counts, new_counts]), minlength=len(merged))
    return merged, total.astype(np.int32)


class MaskFusion:
    """Per-frame 2D masks fused into persistent 3D instances (see the module docstring)."""

    def __init__(self, config: InstanceConfig, voxel_size_m: float) -> None:
        self.config = config
        self.voxel_size_m = float(voxel_size_m)
        self.clear()

    def clear(self) -> None:
        """Forget every instance and observation (the map was reset)."""
        self.instances: dict[int, _Instance] = {}
        self._next_id = 1
        self._seen_keys = np.zeros(0, np.int64)
        self._seen_counts = np.zeros(0, np.int32)
        self._owner_keys = np.zeros(0, np.int64)
        self._owner_ids = np.zeros(0, np.int64)
        self._pairs: dict[tuple[int, int], list[int]] = {}
        self.counts: collections.Counter[str] = collections.Counter()

    def __len__(self) -> int:
        return len(self.instances)

    @property
    def views_fused(self) -> int:
        return self.counts['mask_views']

    # -- one frame ---------------------------------------------------------------------------------------

    def add_view(self, view: FrameView, masks: FrameMasks, surface: SurfaceVoxels, structure: Structure) -> None:
        """Fuse one frame's masks (``view``: a :class:`~gpt4scene_ros.objects.keyframes.FrameView`) given the map's
        current surface voxels and their structure flags."""
        cfg = self.config
        reduced = reduce_masks(masks.labels, view.depth_step)
        rows, cols, keys = view.map_keys(self.voxel_size_m)
        index = _snap_to_surface(surface, keys)
        on_surface = index >= 0
        rows, cols, index = rows[on_surface], cols[on_surface], index[on_surface]
        if len(index) == 0:
            self.counts['mask_views_off_the_map'] += 1
            return
        self.counts['mask_views'] += 1
        frame_keys = np.unique(surface.keys[index])
        self._seen_keys, self._seen_counts = _add_counts(
            self._seen_keys, self._seen_counts, frame_keys, np.ones(len(frame_keys), np.int32)
        )
        mask_of_pixel = reduced[rows, cols].astype(np.int64)
        is_structure = structure.mask[index]
        # Masks mostly on the floor, walls or ceiling, or covering most of what the frame sees, are structure.
        numbers, pixel_counts = np.unique(mask_of_pixel[mask_of_pixel > 0], return_counts=True)
        structure_counts = np.bincount(mask_of_pixel[is_structure], minlength=int(numbers.max(initial=0)) + 1)
        rejected = (structure_counts[numbers] > cfg.mask_max_structure_fraction * pixel_counts) | (
            pixel_counts > cfg.mask_max_image_fraction * len(mask_of_pixel)
        )
        self.counts['masks_rejected_as_structure'] += int(rejected.sum())
        valid = np.zeros(int(numbers.max(initial=0)) + 1, bool)
        valid[numbers[~rejected]] = True
        objects = ~is_structure
        pixel_mask = np.where(objects & valid[mask_of_pixel], mask_of_pixel, 0)
        # One entry per (mask, voxel).
        voxel_keys = surface.keys[index]
        pair = np.unique(np.stack([pixel_mask[pixel_mask > 0], voxel_keys[pixel_mask > 0]], axis=1), axis=0)
        mask_ids, mask_keys = pair[:, 0], pair[:, 1]
        sizes = collections.Counter(mask_ids.tolist())
        keep = np.array([sizes[m] >= cfg.mask_min_voxels for m in mask_ids.tolist()], bool)
        mask_ids, mask_keys = mask_ids[keep], mask_keys[keep]
        self.counts['masks_too_small'] += sum(1 for n in sizes.values() if n < cfg.mask_min_voxels)
        # The instances this frame sees: owner of each object voxel it sees.
        object_keys = np.unique(voxel_keys[objects])
        owner_of_seen = self._owner(object_keys)
        owners, visible = np.unique(owner_of_seen[owner_of_seen > 0], return_counts=True)
        visible_of = dict(zip(owners.tolist(), visible.tolist()))
        # Contingency of masks and instances on the mask voxels.
        owner_of_mask_key = self._owner(mask_keys)
        cells, inter = np.unique(np.stack([mask_ids, owner_of_mask_key], axis=1), axis=0, return_counts=True)
        overlaps: dict[int, dict[int, int]] = collections.defaultdict(dict)  # mask -> instance -> shared voxels
        for (m, i), n in zip(cells.tolist(), inter.tolist()):
            if i > 0:
                overlaps[m][i] = n
        candidates = []
        for m, by_instance in overlaps.items():
            for i, n in by_instance.items():
                iou = n / (sizes[m] + visible_of.get(i, n) - n)
                if iou >= cfg.mask_min_iou:
                    candidates.append((iou, m, i))
        assigned: dict[int, int] = {}
        taken: set[int] = set()
        for _, m, i in sorted(candidates, reverse=True):
            if m not in assigned and i not in taken:
                assigned[m] = i
                taken.add(i)
        starts = np.searchsorted(mask_ids, np.unique(mask_ids))
        ends = np.r_[starts[1:], len(mask_ids)]
        for start, end in zip(starts.tolist(), ends.tolist()):
            m = int(mask_ids[start])
            instance_id = assigned.get(m)
            if instance_id is None:
                instance_id = self._next_id
                self._next_id += 1
                self.instances[instance_id] = _Instance()
                self.counts['mask_instances_started'] += 1
            instance = self.instances[instance_id]
            instance.add(mask_keys[start:end], np.ones(end - start, np.int32))
            instance.observations += 1
            name = masks.names.get(m, '')
            if name:
                weight = float(masks.scores.get(m, 1.0))
                instance.label_votes[name] += weight
                instance.new_label_votes[name] += weight
        self._count_consensus(overlaps, visible_of)
        self._rebuild_owners()

    def _count_consensus(self, overlaps: dict, visible_of: dict) -> None:
        """Together / apart counts of the instances this frame shows each mostly inside one mask."""
        best: dict[int, tuple[int, int]] = {}  # instance -> (shared voxels, mask)
        for m, by_instance in overlaps.items():
            for i, n in by_instance.items():
                if n > best.get(i, (0, 0))[0]:
                    best[i] = (n, m)
        inside = {
            i: m
            for i, (n, m) in best.items()
            if visible_of.get(i, 0) >= self.config.mask_min_voxels and n >= 0.5 * visible_of[i]
        }
        ids = sorted(inside)
        for k, a in enumerate(ids):
            for b in ids[k + 1 :]:
                counts = self._pairs.setdefault((a, b), [0, 0])
                counts[0 if inside[a] == inside[b] else 1] += 1

    # -- per update ----------------------------------------------------------------------------------------

    def consolidate(self) -> None:
        """Merge instances the views put in one mask, and duplicates (see the module docstring)."""
        cfg = self.config
        parent = {i: i for i in self.instances}

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        def apart(a: int, b: int) -> int:
            return self._pairs.get((min(a, b), max(a, b)), [0, 0])[1]

        for (a, b), (together, separate) in sorted(self._pairs.items()):
            if a not in parent or b not in parent:
                continue
            seen_both = together + separate
            if together >= cfg.mask_merge_min_views and together >= cfg.mask_merge_consensus * seen_both:
                ra, rb = root(a), root(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
        # Duplicates: an instance owning little of its own voxels lives inside another one.
        for i, instance in self.instances.items():
            if len(instance.keys) < cfg.mask_min_voxels:
                continue
            owner = self._owner(instance.keys)
            others = owner[(owner != i) & (owner > 0)]
            if len(others) < (1.0 - cfg.mask_duplicate_owned_fraction) * len(instance.keys):
                continue
            host = int(np.bincount(others).argmax())
            host_share = np.count_nonzero(others == host) / len(instance.keys)
            if host_share >= 0.5 and apart(i, host) <= self._together(i, host):
                ri, rh = root(i), root(host)
                if ri != rh:
                    parent[max(ri, rh)] = min(ri, rh)
        groups: dict[int, list[int]] = collections.defaultdict(list)
        for i in self.instances:
            groups[root(i)].append(i)
        for target, members in groups.items():
            for i in members:
                if i == target:
                    continue
                source = self.instances.pop(i)
                kept = self.instances[target]
                kept.add(source.keys, source.counts)
                kept.observations += source.observations
                for name, weight in source.label_votes.items():
                    kept.label_votes[name] += weight
                for name, weight in source.new_label_votes.items():
                    kept.new_label_votes[name] += weight
                self.counts['mask_instances_merged'] += 1
        if any(len(m) > 1 for m in groups.values()):
            pairs: dict[tuple[int, int], list[int]] = {}
            for (a, b), (together, separate) in self._pairs.items():
                ra, rb = root(a), root(b)
                if ra == rb:
                    continue
                counts = pairs.setdefault((min(ra, rb), max(ra, rb)), [0, 0])
                counts[0] += together
                counts[1] += separate
            self._pairs = pairs
            self._rebuild_owners()

    def _together(self, a: int, b: int) -> int:
        return self._pairs.get((min(a, b), max(a, b)), [0, 0])[0]

    def segment(self, voxels: SurfaceVoxels, structure: Structure) -> tuple[np.ndarray, list[int]]:
        """(segment index per surface voxel, -1 for none; the mask instance of each segment).

        A voxel belongs to the instance that saw it most often, where it was part of that instance in at least
        ``mask_keep_fraction`` of the masked frames that saw it and is not in a stray bit of fewer than
        ``mask_min_part_voxels``; an instance must have been observed in ``mask_min_observations`` frames."""
        cfg = self.config
        count = len(voxels)
        labels = np.full(count, -1, np.int64)
        if count == 0 or not self.instances:
            return labels, []
        best_id = np.zeros(count, np.int64)
        best_count = np.zeros(count, np.int32)
        for i, instance in self.instances.items():
            if instance.observations < cfg.mask_min_observations:
                continue
            position = lookup(voxels.keys, instance.keys)
            found = position >= 0
            position, counts = position[found], instance.counts[found]
            better = counts > best_count[position]
            best_id[position[better]] = i
            best_count[position[better]] = counts[better]
        seen = np.zeros(count, np.int32)
        if len(self._seen_keys):
            seen_index = lookup(self._seen_keys, voxels.keys)
            seen = np.where(seen_index >= 0, self._seen_counts[np.maximum(seen_index, 0)], 0)
        member = (best_id > 0) & (best_count >= cfg.mask_keep_fraction * seen) & ~structure.mask
        # Stray bits (a border pixel spilled onto what is behind) go; the parts the views put in one mask stay
        # one segment though the surface between them was never seen (a table's legs under its top).
        edges = voxels.edges
        same = member[edges[:, 0]] & member[edges[:, 1]] & (best_id[edges[:, 0]] == best_id[edges[:, 1]])
        parts = np.where(member, components(count, edges, same), -1)
        sizes = np.bincount(parts[parts >= 0], minlength=count) if member.any() else np.zeros(count, np.int64)
        member &= sizes[np.maximum(parts, 0)] >= cfg.mask_min_part_voxels
        ids, totals = np.unique(best_id[member], return_counts=True)
        big = totals >= cfg.min_instance_voxels
        # Largest first: segment numbers follow size.
        segment_instance = [int(i) for i in ids[big][np.argsort(-totals[big], kind='stable')].tolist()]
        lookup_table = np.full(int(best_id.max()) + 1, -1, np.int64)
        lookup_table[segment_instance] = np.arange(len(segment_instance))
        labels = np.where(member, lookup_table[best_id], -1)
        return labels, segment_instance

    def take_new_label_votes(self, instance_id: int) -> dict[str, float]:
        """The label votes an instance got since the last call (for the tracker's labels)."""
        instance = self.instances.get(instance_id)
        if instance is None:
            return {}
        votes = dict(instance.new_label_votes)
        instance.new_label_votes.clear()
        return votes

    # -- persistence: saved with the map, so that a reloaded map keeps its mask instances ------------------------

    def state(self) -> tuple[dict, dict]:
        """(a JSON record, numeric arrays) of the fused instances, their voxels and their view consensus."""
        ids = sorted(self.instances)
        kept = [self.instances[i] for i in ids]
        record = {
            'next_id': self._next_id,
            'counts': dict(self.counts),
            'label_votes': {str(i): dict(inst.label_votes) for i, inst in zip(ids, kept) if inst.label_votes},
        }
        arrays = {
            'mask_instance_ids': np.array(ids, np.int64),
            'mask_observations': np.array([inst.observations for inst in kept], np.int64),
            'mask_sizes': np.array([len(inst.keys) for inst in kept], np.int64),
            'mask_keys': np.concatenate([inst.keys for inst in kept]) if kept else np.zeros(0, np.int64),
            'mask_counts': np.concatenate([inst.counts for inst in kept]) if kept else np.zeros(0, np.int32),
            'mask_seen_keys': self._seen_keys,
            'mask_seen_counts': self._seen_counts,
            'mask_pairs': np.array([[a, b, t, s] for (a, b), (t, s) in sorted(self._pairs.items())], np.int64).reshape(
                -1, 4
            ),
        }
        return record, arrays

    def restore(self, record: dict, arrays: dict) -> None:
        """Replace the fusion by a :meth:`state`; ValueError (the fusion unchanged) for a malformed one."""
        try:
            ids, observations, sizes, keys, counts, seen_keys, seen_counts, pairs = (
                np.asarray(arrays[name])
                for name in (
                    'mask_instance_ids',
                    'mask_observations',
                    'mask_sizes',
                    'mask_keys',
                    'mask_counts',
                    'mask_seen_keys',
                    'mask_seen_counts',
                    'mask_pairs',
                )
            )
            next_id = int(record['next_id'])
            votes = {int(i): {str(k): float(v) for k, v in named.items()} for i, named in record['label_votes'].items()}
            counts_record = {str(k): int(v) for k, v in record['counts'].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f'mask fusion state: {error!r}') from None
        shapes_agree = (
            len(ids) == len(observations) == len(sizes)
            and int(sizes.sum()) == len(keys) == len(counts)
            and len(seen_keys) == len(seen_counts)
            and pairs.ndim == 2
            and pairs.shape[1] == 4
        )
        integers = all(a.dtype.kind == 'i' for a in (ids, observations, sizes, keys, counts, seen_keys, pairs))
        if not (shapes_agree and integers) or (len(ids) and (ids.min() < 1 or ids.max() >= next_id)):
            raise ValueError('mask fusion state: arrays of different lengths, not integers, or ids out of range')
        self.clear()
        starts = np.r_[0, np.cumsum(sizes)]
        for k, instance_id in enumerate(ids.tolist()):
            instance = _Instance()
            instance.keys = keys[starts[k] : starts[k + 1]].astype(np.int64)
            instance.counts = counts[starts[k] : starts[k + 1]].astype(np.int32)
            instance.observations = int(observations[k])
            instance.label_votes.update(votes.get(instance_id, {}))
            self.instances[instance_id] = instance
        self._next_id = next_id
        self._seen_keys, self._seen_counts = seen_keys.astype(np.int64), seen_counts.astype(np.int32)
        self._pairs = {(int(a), int(b)): [int(t), int(s)] for a, b, t, s in pairs.tolist()}
        self.counts.update(counts_record)
        self._rebuild_owners()

    # -- owners -----------------------------------------------------------------------------------------------

    def _owner(self, keys: np.ndarray) -> np.ndarray:
        """Instance that saw each voxel key most often as part of it (0: none)."""
        if len(self._owner_keys) == 0:
            return np.zeros(len(keys), np.int64)
        position = lookup(self._owner_keys, keys)
        return np.where(position >= 0, self._owner_ids[np.maximum(position, 0)], 0)

    def _rebuild_owners(self) -> None:
        if not self.instances:
            self._owner_keys, self._owner_ids = np.zeros(0, np.int64), np.zeros(0, np.int64)
            return
        keys = np.concatenate([inst.keys for inst in self.instances.values()])
        counts = np.concatenate([inst.counts for inst in self.instances.values()])
        ids = np.concatenate([np.full(len(inst.keys), i, np.int64) for i, inst in self.instances.items()])
        order = np.lexsort((-counts, keys))
        keys, ids = keys[order], ids[order]
        first = np.r_[True, keys[1:] != keys[:-1]]
        self._owner_keys, self._owner_ids = keys[first], ids[first]


def _snap_to_surface(surface: SurfaceVoxels, keys: np.ndarray) -> np.ndarray:
    """Index of the surface voxel each key falls in, or in one of its 6 face neighbours (a depth pixel lands a
    voxel in front of or behind the fused surface); -1 where none."""
    index = lookup(surface.keys, keys)
    for offset in ((0, 0, 1), (0, 0, -1), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0)):
        missing = index < 0
        if not missing.any():
            break
        index[missing] = lookup(surface.keys, keys[missing] + packed_offset(*offset))
    return index
