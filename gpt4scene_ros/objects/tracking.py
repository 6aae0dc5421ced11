"""Object instances with persistent IDs: segments of successive map updates associated over time.

Each update's segments (:func:`gpt4scene_ros.objects.segmentation.surface.segment_surface`)
are matched to the instances of the previous updates by the overlap of their
voxels, coarsened to cells of two voxels (a re-fused surface moves by up to a
voxel), with a Hungarian assignment on that overlap weighed by how well the
boxes agree (of two halves of an object, the one with its box keeps its ID):

- a matched segment keeps its instance's ID;
- an instance whose cells went mostly into another matched segment was merged
  into it: it is kept as missing (below), so that a part that splits off
  again where it was (segmentations flicker between merging two touching
  objects and not) gets its old ID back, published, like a new segment, when
  the next update has it again (segments are matched to the instances of the
  last update first, to missing ones and candidates only where none is left;
  the instance it merged into keeps only its own cells, so each part finds
  its own ID when they split); two instances that one segment joins are
  tracked apart until ``merge_after_updates`` successive updates join them,
  more for instances seen apart for long (:meth:`InstanceTracker.keep_apart`);
- a segment that overlaps nothing known (or only the remainder of an instance
  that matched another segment: a split) is a candidate: it gets a new ID,
  and is published, when the next update has it again (as Hydra and Khronos
  confirm a track after repeated observations; a segment that flickers for
  one update costs no ID). A part split off an instance seen for long waits
  longer: as many updates as a join of two instances seen apart that long
  (:meth:`InstanceTracker.keep_apart`). Where no instance is known yet (the
  first update, after a reset) new segments are published at once;
- an instance that matches nothing is kept, unpublished, as missing: an object
  that comes back (or whose segment stops flickering) gets its old ID back.

IDs are small integers counted up from 1 and printed ``<OBJ###>``; at most
``max_instances`` are published per update, the smallest segments are left
out (with a log line). A map reset clears the instances but not the counter,
so an ID is never reused for another object.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from gpt4scene_ros.objects.boxes import OrientedBox, box_iou
from gpt4scene_ros.objects.tags import object_tag
from gpt4scene_ros.objects.voxels import pack_keys, unpack_keys

logger = logging.getLogger(__name__)

TRACKER_STATE_VERSION = 1


@dataclass(frozen=True)
class Instance:
    """One object instance in the map frame."""

    id: int
    box: OrientedBox
    num_points: int
    label: str = ''
    confidence: float = 0.0
    first_seen_s: float = 0.0
    last_seen_s: float = 0.0
    mean_rgb: tuple = (0, 0, 0)
    keyframe_ids: tuple = ()
    """Positions (in the published keyframe list) of the keyframes the instance is visible in."""

    @property
    def tag(self) -> str:
        return object_tag(self.id)

    def to_json(self) -> dict:
        return {
            'id': self.id,
            'label': self.label,
            'confidence': round(float(self.confidence), 4),
            'center': [round(v, 4) for v in self.box.center],
            'size': [round(v, 4) for v in self.box.size],
            'yaw': round(self.box.yaw, 4),
            'num_points': int(self.num_points),
        }


@dataclass(frozen=True, eq=False)
class SegmentObservation:
    """A segment of one update, as the tracker needs it."""

    voxel_keys: np.ndarray
    """Packed keys (:func:`gpt4scene_ros.objects.voxels.pack_keys`) of its surface voxels."""
    box: OrientedBox
    mean_rgb: tuple = (0, 0, 0)


@dataclass(eq=False)
class _Track:
    id: int
    cells: np.ndarray  # sorted unique packed keys of 2-voxel cells
    box: OrientedBox
    num_points: int
    mean_rgb: tuple
    first_seen_s: float
    last_seen_s: float
    hits: int = 1
    missed: int = 0
    label_votes: dict = field(default_factory=dict)  # label -> summed confidence
    split_of: int | None = None  # a candidate's: the instance it split off, if any
    needed: int = 2  # a candidate's: the updates that must have it before it is confirmed
    absorbed_into: int | None = None  # merged into that instance; comes back (with its ID) once seen in two updates
    returning: bool = False  # absorbed, and seen again in the last update

    @classmethod
    def first_seen(
        cls, track_id: int, cells: np.ndarray, segment: SegmentObservation, stamp_s: float, split_of: int | None
    ) -> _Track:
        """A track of ``segment``, seen for the first time at ``stamp_s``."""
        box, size, rgb = segment.box, len(segment.voxel_keys), segment.mean_rgb
        return cls(track_id, cells, box, size, rgb, stamp_s, stamp_s, split_of=split_of)


def _voxel_cells(voxel_keys: np.ndarray) -> np.ndarray:
    """The packed key of the 2-voxel cell of each voxel."""
    return pack_keys(np.floor_divide(unpack_keys(voxel_keys), 2))


def _cells(voxel_keys: np.ndarray) -> np.ndarray:
    return np.unique(_voxel_cells(voxel_keys))


def _sorted_owners(cell_lists: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All cells of ``cell_lists`` sorted, and the list each came from: for lookups with ``np.searchsorted``."""
    cells = np.concatenate(cell_lists)
    owner = np.repeat(np.arange(len(cell_lists)), [len(c) for c in cell_lists])
    order = np.argsort(cells, kind='stable')
    return cells[order], owner[order]


class InstanceTracker:
    """Gives segments persistent IDs across updates (see the module docstring)."""

    def __init__(
        self,
        max_instances: int = 100,
        match_min_overlap: float = 0.2,
        max_missing: int = 300,
        merge_after_updates: int = 1,
    ) -> None:
        if max_instances < 1:
            raise ValueError(f'max_instances must be >= 1, got {max_instances}')
        if merge_after_updates < 1:
            raise ValueError(f'merge_after_updates must be >= 1, got {merge_after_updates}')
        self.max_instances = int(max_instances)
        self.merge_after_updates = int(merge_after_updates)
        # Pairs of instances one segment joined: (successive updates, updates it takes to believe the join).
        self._joined: dict[frozenset, tuple[int, int]] = {}
        self.match_min_overlap = float(match_min_overlap)
        self.max_missing = int(max_missing)
        self.next_id = 1
        self.tracks: dict[int, _Track] = {}
        self.candidates: dict[int, _Track] = {}
        """Segments of the last update waiting for confirmation, under negative keys (no ID given yet)."""
        self.retired: list[int] = []
        self.events = {'new': 0, 'merged': 0, 'split': 0, 'returned': 0, 'dropped_over_cap': 0}

    def reset(self) -> None:
        """Forget every instance (map reset); IDs keep counting up, so none is reused."""
        self.tracks.clear()
        self.candidates.clear()
        self._joined = {}

    def keep_apart(self, segment_keys: list[np.ndarray]) -> list[list[np.ndarray]]:
        """The parts of each segment to track apart: the instances it joins that no earlier update joined.

        A segment joins an instance of the last update (seen in two updates or more) when it holds half of its
        cells, and a quarter as many as of the largest instance it joins (a fragment joining a much larger
        instance is noise on its border, believed at once). A join of two or more is believed once
        ``merge_after_updates`` successive updates have it, or half as many as the updates the two were seen
        apart before (the fewer hits of the pair when the join began; at most three times
        ``merge_after_updates``): the longer two objects were told apart, the more it takes to believe they are
        one, so a revisit's flicker does not merge two chairs seen apart all along, while parts of one object
        joined early on merge soon. Until then the segment is parted by the instances' cells (voxels in none go
        with the nearest part), so that a segmentation that joins two touching objects for a few updates costs no
        ID and no box. Returns, per segment, index arrays into its keys (one for a segment kept whole). Call
        before :meth:`update`.
        """
        whole = [[np.arange(len(keys))] for keys in segment_keys]
        established = [t for t in self.tracks.values() if t.missed == 0 and t.hits >= 2]
        if self.merge_after_updates <= 1 or not established:
            self._joined = {}
            return whole
        track_cells, track_owner = _sorted_owners([t.cells for t in established])
        sizes = np.array([len(t.cells) for t in established])
        joined_now: dict[frozenset, tuple[int, int]] = {}
        for k, keys in enumerate(segment_keys):
            unique_cells, inverse = np.unique(_voxel_cells(keys), return_inverse=True)
            at = np.minimum(np.searchsorted(track_cells, unique_cells), len(track_cells) - 1)
            owner = np.where(track_cells[at] == unique_cells, track_owner[at], -1)
            inside = np.bincount(owner[owner >= 0], minlength=len(established))
            joined = np.flatnonzero(inside >= 0.5 * sizes)
            joined = joined[inside[joined] >= 0.25 * inside[joined].max()] if len(joined) else joined
            if len(joined) < 2:
                continue
            pairs = [(established[a], established[b]) for n, a in enumerate(joined) for b in joined[n + 1 :]]
            believed = True
            for a, b in pairs:
                pair = frozenset((a.id, b.id))
                count, needed = self._joined.get(pair, (0, 0))
                if not count:  # the join begins: the updates it takes, from how long the two were seen apart
                    needed = self._updates_to_believe(min(a.hits, b.hits))
                joined_now[pair] = (count + 1, needed)
                believed &= count + 1 >= needed
            if believed:
                continue
            voxel_owner = owner[inverse]
            owned = np.isin(voxel_owner, joined)
            if not owned.all():  # surface the instances did not hold (newly mapped): to the nearest part
                grid = unpack_keys(keys)
                _, nearest = cKDTree(grid[owned]).query(grid[~owned])
                voxel_owner[~owned] = voxel_owner[owned][nearest]
            whole[k] = [np.flatnonzero(voxel_owner == j) for j in joined]
        self._joined = joined_now
        return whole

    def _updates_to_believe(self, hits: int) -> int:
        """Successive updates a change of what the tracker believed for ``hits`` updates needs (two instances
        joined, an instance split): half as many, from ``merge_after_updates`` to three times that."""
        return min(max(self.merge_after_updates, -(-hits // 2)), 3 * self.merge_after_updates)

    def update(self, segments: Iterable[SegmentObservation], stamp_s: float, confirm: bool = True) -> list[int]:
        """Associate this update's segments with the known instances.

        Returns the instance ID given to each segment (0 for a segment left out by ``max_instances`` or
        waiting for confirmation); :meth:`published` then lists this update's instances. ``confirm`` False:
        new segments are published at once (their source already confirmed them, e.g. the mask fusion).
        """
        segments = list(segments)
        kept = list(range(len(segments)))
        if len(segments) > self.max_instances:
            sizes = [len(s.voxel_keys) for s in segments]
            order = sorted(range(len(segments)), key=lambda k: -sizes[k])
            dropped = len(segments) - self.max_instances
            self.events['dropped_over_cap'] += dropped
            logger.info(
                '%d segments, more than max_instances=%d: the %d smallest (up to %d voxels) are left out',
                len(segments),
                self.max_instances,
                dropped,
                max(len(segments[k].voxel_keys) for k in order[self.max_instances :]),
            )
            kept = sorted(order[: self.max_instances])
            segments = [segments[k] for k in kept]
        cells = [_cells(s.voxel_keys) for s in segments]
        immediate = not confirm or not self.tracks
        candidates, self.candidates = self.candidates, {}
        track_ids = list(self.tracks) + list(candidates)
        overlap, inter = self._overlaps(cells, track_ids, candidates)
        preference = self._preference(overlap, segments, track_ids, candidates)
        assigned: dict[int, int] = {}  # segment index -> track id
        if overlap.size:
            # The instances of the last update first, then the missing ones and the candidates for what is left:
            # a missing instance (one merged into another) never takes a segment from the one it merged into, and
            # a part of an object that flickers back competes with the object's old instance on equal terms.
            missing = np.array([t < 0 or self.tracks[t].missed > 0 for t in track_ids])
            for columns in (~missing, missing):
                free = np.array([r for r in range(len(segments)) if r not in assigned], dtype=np.int64)
                candidate_columns = np.flatnonzero(columns)
                if not len(free) or not len(candidate_columns):
                    continue
                sub = overlap[np.ix_(free, candidate_columns)]
                rows, cols = linear_sum_assignment(-preference[np.ix_(free, candidate_columns)])
                for r, c in zip(rows, cols):
                    if sub[r, c] >= self.match_min_overlap:
                        assigned[int(free[r])] = track_ids[candidate_columns[c]]
        matched_tracks = set(assigned.values())
        # Merges: a known instance not matched, most of whose cells are in a matched segment.
        for c, track_id in enumerate(track_ids):
            if track_id in matched_tracks or not len(inter) or track_id < 0:
                continue
            track = self.tracks[track_id]
            if track.missed > 0:
                continue
            r = int(np.argmax(inter[:, c]))
            if inter[r, c] >= 0.5 * len(track.cells) and r in assigned:
                # Kept as missing with its cells, not retired: when the part splits off again it gets its ID back.
                logger.info('%s merged into %s', object_tag(track_id), object_tag(assigned[r]))
                self.events['merged'] += 1
                track.absorbed_into = assigned[r]
        # An instance's cells leave out those of the instances merged into it: when the segmentation splits them
        # apart again, each part is matched to the instance it was, not to the one that held both for a while.
        absorbed_cells: dict[int, list[np.ndarray]] = {}
        for track in self.tracks.values():
            if track.absorbed_into is not None:
                absorbed_cells.setdefault(track.absorbed_into, []).append(track.cells)
        published = []
        ids = [0] * (max(kept) + 1 if kept else 0)
        hits_before = {track_id: track.hits for track_id, track in self.tracks.items()}
        for r, segment in enumerate(segments):
            matched_id = assigned.get(r)
            if matched_id is None:
                split_of = self._split_of(cells[r], inter[r] if len(track_ids) else None, track_ids)
                if not immediate:  # a candidate: an ID and publication when the next update has it again
                    key = -1 - len(self.candidates)
                    candidate = _Track.first_seen(key, cells[r], segment, stamp_s, split_of)
                    if split_of is not None and self.merge_after_updates > 1:  # a part of an instance seen whole
                        candidate.needed = max(2, self._updates_to_believe(hits_before[split_of]))
                    self.candidates[key] = candidate
                    continue
                track = self._new_track(cells[r], segment, stamp_s, split_of)
            elif matched_id < 0:  # a candidate of the last update, seen again
                candidate = candidates[matched_id]
                if candidate.hits + 1 < candidate.needed:  # not yet: a candidate one update longer
                    key = -1 - len(self.candidates)
                    candidate.id, candidate.cells, candidate.box = key, cells[r], segment.box
                    candidate.hits += 1
                    self.candidates[key] = candidate
                    continue
                track = self._new_track(cells[r], segment, candidate.first_seen_s, candidate.split_of)
                track.last_seen_s, track.hits = stamp_s, candidate.hits + 1
            else:
                track = self.tracks[matched_id]
                own = cells[r]
                if matched_id in absorbed_cells:
                    own = np.setdiff1d(own, np.concatenate(absorbed_cells[matched_id]))
                track.cells = own if len(own) else cells[r]
                track.box, track.num_points = segment.box, len(segment.voxel_keys)
                track.mean_rgb, track.last_seen_s = segment.mean_rgb, stamp_s
                if track.absorbed_into is not None and not track.returning and not immediate:
                    track.returning = True  # confirmed like a new segment
                    continue
                if track.missed:
                    self.events['returned'] += 1
                track.hits += 1
                track.missed = 0
                track.absorbed_into, track.returning = None, False
            published.append(track.id)
            ids[kept[r]] = track.id
        for track_id, track in list(self.tracks.items()):
            if track_id not in published:
                track.missed += 1
                track.returning = track.returning and track_id in matched_tracks  # seen in successive updates only
        self._forget_old_missing()
        return ids

    def _overlaps(
        self, cells: list[np.ndarray], track_ids: list[int], candidates: dict
    ) -> tuple[np.ndarray, np.ndarray]:
        """(overlap, intersection) matrices, segments x tracks (candidates under their negative keys), over
        2-voxel cells."""
        track_cells_of = [(self.tracks[t] if t >= 0 else candidates[t]).cells for t in track_ids]
        n_segments, n_tracks = len(cells), len(track_ids)
        inter = np.zeros((n_segments, n_tracks))
        if n_segments and n_tracks:
            segment_cells = np.concatenate(cells)
            segment_owner = np.repeat(np.arange(n_segments), [len(c) for c in cells])
            track_cells, track_owner = _sorted_owners(track_cells_of)
            low = np.searchsorted(track_cells, segment_cells, side='left')
            high = np.searchsorted(track_cells, segment_cells, side='right')
            repeats = high - low
            rows = np.repeat(segment_owner, repeats)
            starts = np.repeat(low, repeats)
            within = np.arange(len(rows)) - np.repeat(np.cumsum(repeats) - repeats, repeats)
            columns = track_owner[starts + within]
            inter = (
                np.bincount(rows * n_tracks + columns, minlength=n_segments * n_tracks)
                .reshape(n_segments, n_tracks)
                .astype(np.float64)
            )
        sizes_segments = np.array([len(c) for c in cells], dtype=np.float64)[:, None]
        sizes_tracks = np.array([len(c) for c in track_cells_of], dtype=np.float64)[None, :]
        union = sizes_segments + sizes_tracks - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        # A segment that grew (more of the object seen) still matches its track: the share of the smaller
        # side that overlaps counts too, at half weight.
        containment = inter / np.maximum(np.minimum(sizes_segments, sizes_tracks), 1)
        return np.maximum(iou, 0.5 * containment), inter

    def _preference(
        self, overlap: np.ndarray, segments: list[SegmentObservation], track_ids: list[int], candidates: dict
    ) -> np.ndarray:
        """The overlap, weighed by how well the boxes agree, that the assignment maximises.

        When an object splits into two parts of about equal size (a bed's frame and its mattress), the overlap
        alone is a coin toss; the part whose box is the object's box keeps its ID, so the ID stays with the object
        as a user sees it (its box, its marker). Whether a pair matches at all is still the overlap's call.
        """
        preference = np.zeros_like(overlap)
        for r, c in zip(*np.nonzero(overlap)):
            track_box = (self.tracks[track_ids[c]] if track_ids[c] >= 0 else candidates[track_ids[c]]).box
            preference[r, c] = overlap[r, c] * (0.2 + 0.8 * box_iou(segments[r].box, track_box))
        return preference

    def _split_of(self, cells: np.ndarray, inter_row: np.ndarray | None, track_ids: list[int]) -> int | None:
        """The known instance most of ``cells`` lie in (a part split off it), or None (a new object)."""
        if inter_row is None or not len(inter_row) or inter_row.max() < 0.5 * len(cells):
            return None
        parent = track_ids[int(np.argmax(inter_row))]
        return parent if parent >= 0 else None

    def _new_track(
        self, cells: np.ndarray, segment: SegmentObservation, stamp_s: float, split_of: int | None
    ) -> _Track:
        if split_of is not None:
            self.events['split'] += 1
            logger.info('a part split off %s: new instance %s', object_tag(split_of), object_tag(self.next_id))
        else:
            self.events['new'] += 1
        track = _Track.first_seen(self.next_id, cells, segment, stamp_s, None)
        self.tracks[track.id] = track
        self.next_id += 1
        return track

    def _forget_old_missing(self) -> None:
        missing = [t for t in self.tracks.values() if t.missed > 0]
        if len(missing) > self.max_missing:
            for track in sorted(missing, key=lambda t: t.last_seen_s)[: len(missing) - self.max_missing]:
                del self.tracks[track.id]
                self.retired.append(track.id)

    def vote_label(self, track_id: int, label: str, confidence: float) -> None:
        """Add a learned detector's vote for an instance's label."""
        track = self.tracks.get(track_id)
        if track is not None and label:
            track.label_votes[label] = track.label_votes.get(label, 0.0) + float(confidence)

    def instance(self, track_id: int) -> Instance:
        track = self.tracks[track_id]
        label, confidence = '', 0.0
        if track.label_votes:
            label, best = max(track.label_votes.items(), key=lambda item: item[1])
            confidence = best / sum(track.label_votes.values()) * min(1.0, best / max(track.hits, 1))
        return Instance(
            track.id,
            track.box,
            track.num_points,
            label,
            float(min(1.0, confidence)),
            track.first_seen_s,
            track.last_seen_s,
            track.mean_rgb,
        )

    def published(self) -> list[Instance]:
        """The instances of the last update, by ID."""
        return [self.instance(t) for t in sorted(self.tracks) if self.tracks[t].missed == 0]

    # -- persistence (stored in the map file, so that a reload keeps the IDs) ----------------------------

    def state(self) -> dict:
        """JSON-serialisable state: the counter and every known instance's cells and box."""
        return {
            'version': TRACKER_STATE_VERSION,
            'next_id': self.next_id,
            'tracks': [
                {
                    'id': t.id,
                    'cells': t.cells.tolist(),
                    'box': t.box.to_json(),
                    'num_points': t.num_points,
                    'mean_rgb': list(t.mean_rgb),
                    'first_seen_s': t.first_seen_s,
                    'last_seen_s': t.last_seen_s,
                    'hits': t.hits,
                    'label_votes': t.label_votes,
                }
                for t in self.tracks.values()
            ],
        }

    def restore(self, state: dict) -> None:
        """Replace the instances by a :meth:`state`; the counter never goes back. Raises ValueError."""
        try:
            if state.get('version') != TRACKER_STATE_VERSION:
                raise ValueError(f'tracker state version {state.get("version")!r}, expected {TRACKER_STATE_VERSION}')
            tracks = {}
            for record in state['tracks']:
                track = _Track(
                    int(record['id']),
                    np.unique(np.asarray(record['cells'], dtype=np.int64)),
                    OrientedBox.from_json(record['box']),
                    int(record['num_points']),
                    tuple(record.get('mean_rgb', (0, 0, 0))),
                    float(record['first_seen_s']),
                    float(record['last_seen_s']),
                    int(record.get('hits', 1)),
                    1,
                    {str(k): float(v) for k, v in record.get('label_votes', {}).items()},
                )
                tracks[track.id] = track
            next_id = max([int(state['next_id']), self.next_id] + [t + 1 for t in tracks])
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f'malformed tracker state: {error!r}') from None
        self.tracks = tracks
        self.next_id = next_id

    def with_keyframes(self, instances: Iterable[Instance], keyframe_ids: dict) -> list[Instance]:
        """``instances`` with their ``keyframe_ids`` filled in from {instance id: positions}."""
        return [replace(i, keyframe_ids=tuple(keyframe_ids.get(i.id, ()))) for i in instances]
