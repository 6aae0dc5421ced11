"""The object layer of a map: instances with persistent IDs, keyframes and ID markers, as one snapshot.

:class:`SceneObjects` is what the mapping node and the offline CLI drive:

- :meth:`SceneObjects.observe` takes every integrated frame on the map's own
  thread and only keeps (a reference to) those that moved enough to be new
  keyframe candidates: cheap, it never delays integration;
- :meth:`SceneObjects.update`, run in a worker on a snapshot of the map's
  surface, segments the candidates' colour images for boundary votes,
  segments the surface (:mod:`gpt4scene_ros.objects.segmentation.surface`), tracks the
  instances (:mod:`gpt4scene_ros.objects.tracking`), labels what each
  candidate shows, chooses the keyframes and places the markers, and returns
  an :class:`ObjectsSnapshot`: one consistent state that the query service can
  take as a whole.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from gpt4scene_ros.common.frames import CameraIntrinsics
from gpt4scene_ros.common.masks import FrameMasks, MaskError
from gpt4scene_ros.common.motion import MotionGate, viewing_angle_deg
from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.common.settings.mapping import MappingConfig
from gpt4scene_ros.mapping.bev import BevImage, map_bev
from gpt4scene_ros.objects.boxes import fit_box
from gpt4scene_ros.objects.detectors import (
    Detection,
    Detector,
    checked_detections,
    fuse_detections,
)
from gpt4scene_ros.objects.keyframes import (
    FrameView,
    KeyframePool,
    ViewLabels,
    VoxelLabels,
    label_view,
    make_view,
    select_keyframes,
)
from gpt4scene_ros.objects.markers import Marker, MarkerStyle, draw_markers, fit_image, place_markers, scale_markers
from gpt4scene_ros.objects.segmentation.masks import MaskFusion, ViewMasks
from gpt4scene_ros.objects.segmentation.structure import find_structure
from gpt4scene_ros.objects.segmentation.surface import Segmentation, segment_surface
from gpt4scene_ros.objects.segmentation.votes import BoundaryVotes
from gpt4scene_ros.objects.tracking import Instance, InstanceTracker, SegmentObservation
from gpt4scene_ros.objects.voxels import SurfaceVoxels, surface_voxels

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Keyframe:
    """A chosen keyframe: the unmarked colour image, its camera, and the markers of the instances it shows.
    ``rank`` is its place in the selection (0 first): a query for n frames is shown the n of lowest rank."""

    index: int
    stamp_s: float
    image: np.ndarray
    intrinsics: CameraIntrinsics
    T_map_camera: np.ndarray
    markers: tuple
    rank: int = 0


@dataclass(frozen=True, eq=False)
class ObjectsSnapshot:
    """Everything the object layer publishes for one map state."""

    stamp_s: float
    map_version: int
    instances: tuple
    bev: BevImage
    bev_markers: tuple
    keyframes: tuple
    marker_style: MarkerStyle = MarkerStyle()
    timing_ms: dict = field(default_factory=dict)
    segmentation: Segmentation | None = field(default=None, repr=False)
    voxel_ids: np.ndarray | None = field(default=None, repr=False)
    """Instance id of each voxel of ``segmentation.voxels`` (0: none), for evaluation and debugging."""

    _marked: dict = field(default_factory=dict, init=False, repr=False)

    def marked(self, keyframe: Keyframe | None = None, longest_px: int = 0, multiple: int = 1) -> np.ndarray:
        """The BEV (``keyframe`` None) or one of the snapshot's keyframes with its markers, fitted to
        ``longest_px`` (0: as it is; sides a multiple of ``multiple``) with the markers drawn at that size.

        Drawn once per snapshot and size, then shared (read-only): the node publishes them and every query of
        this snapshot shows them without drawing again.
        """
        key = (None if keyframe is None else keyframe.index, int(longest_px), int(multiple))
        image = self._marked.get(key)
        if image is None:
            source, markers = self.bev.image, self.bev_markers
            if keyframe is not None:
                source, markers = keyframe.image, keyframe.markers
            scale_u = scale_v = 1.0
            if longest_px:
                source, scale_u, scale_v = fit_image(source, longest_px, multiple)
            image = draw_markers(source, scale_markers(markers, scale_u, scale_v), self.marker_style)
            image.flags.writeable = False
            self._marked[key] = image
        return image

    def bev_marked(self) -> np.ndarray:
        """The BEV with its markers (:meth:`marked`)."""
        return self.marked()

    def instance(self, instance_id: int) -> Instance | None:
        return next((i for i in self.instances if i.id == instance_id), None)


class CandidateGate:
    """Keeps a frame as a keyframe candidate only when the camera moved or turned enough since the last one."""

    def __init__(self, config: InstanceConfig) -> None:
        self.config = config
        self._motion = MotionGate(
            config.keyframe_min_translation_m, config.keyframe_min_rotation_deg, viewing_angle_deg, zero_is_off=False
        )

    def offer(
        self,
        color: npt.ArrayLike,
        depth: npt.ArrayLike,
        intrinsics: CameraIntrinsics,
        T_map_camera: np.ndarray,
        stamp_s: float,
        index: int,
        depth_scale: float = 1.0,
        masks: FrameMasks | None = None,
    ) -> FrameView | None:
        """The frame's view when it is a new candidate, else None (cheap: most frames stop at the pose test)."""
        if not self._motion.passes(T_map_camera):
            return None
        self._motion.accept(T_map_camera)
        try:
            return make_view(
                color, depth, intrinsics, T_map_camera, stamp_s, index, self.config.view_width_px, depth_scale, masks
            )
        except MaskError as error:  # the frame is still a good candidate: without its masks
            logger.warning('masks of frame %d not used: %s', index, error)
            return make_view(
                color, depth, intrinsics, T_map_camera, stamp_s, index, self.config.view_width_px, depth_scale
            )

    def reset(self) -> None:
        self._motion.reset()


class SceneObjects:
    """Instances, keyframes and markers of a map (see the module docstring).

    Thread-safety: :meth:`observe` may be called from one thread while
    :meth:`update` runs in another; :meth:`update`, :meth:`reset`,
    :meth:`state` and :meth:`restore` must not run concurrently with each other.
    """

    def __init__(self, config: InstanceConfig, mapping: MappingConfig, detector: Detector | None = None) -> None:
        """``detector`` (optional): anything with ``detect(rgb) -> list[Detection]``
        (:mod:`gpt4scene_ros.objects.detectors`); it names the instances."""
        if not isinstance(config, InstanceConfig):
            raise TypeError(f'config must be an InstanceConfig, got {type(config).__name__}')
        if getattr(detector, 'class_agnostic', False) and not config.detector_masks:
            raise ValueError('the detector gives masks without labels (SAM): it needs detector_masks: true')
        self.config = config
        self.mapping = mapping
        self.detector = detector
        self.style = MarkerStyle(radius_px=config.marker_radius_px)
        self.tracker = InstanceTracker(config.max_instances, merge_after_updates=config.merge_after_updates)
        self.votes = BoundaryVotes(config, mapping.voxel_size_m)
        self.masks = MaskFusion(config, mapping.voxel_size_m)
        self.pool = KeyframePool(config.keyframe_pool_size)
        self._pending: collections.deque[FrameView] = collections.deque(maxlen=config.keyframe_pool_size)
        # In the pool, waiting for the image work (boundary votes, detector) done a few views per update.
        self._unprocessed: collections.deque[FrameView] = collections.deque()
        self._pending_lock = threading.Lock()
        self.gate = CandidateGate(config)
        self.counts: collections.Counter[str] = collections.Counter()
        self.last_snapshot: ObjectsSnapshot | None = None
        self._views: list[FrameView] = []
        self._visible: list[dict[int, int] | None] = []
        self._view_labels: list[ViewLabels] = []
        self._segment_ids: list[int] = []
        self.view_masks = ViewMasks()

    # -- the map thread -----------------------------------------------------------------------------------

    def observe(
        self,
        color: npt.ArrayLike,
        depth: npt.ArrayLike,
        intrinsics: CameraIntrinsics,
        T_map_camera: np.ndarray,
        stamp_s: float,
        index: int,
        depth_scale: float = 1.0,
        masks: FrameMasks | None = None,
    ) -> bool:
        """Offer an integrated frame (depth as the sensor gave it, see :class:`~gpt4scene_ros.common.frames.RgbdFrame`)
        with its instance masks where a mask source gave them; True when it was kept as a keyframe candidate (it
        moved enough)."""
        view = self.gate.offer(color, depth, intrinsics, T_map_camera, stamp_s, index, depth_scale, masks)
        if view is None:
            return False
        self.add_candidate(view)
        return True

    def add_candidate(self, view: FrameView) -> None:
        """Queue a keyframe candidate for the next :meth:`update` (the oldest waiting one goes when full)."""
        with self._pending_lock:
            if len(self._pending) == self._pending.maxlen:
                self.counts['candidates_dropped'] += 1
            self._pending.append(view)
        self.counts['candidates'] += 1

    def add_masks(self, stamp_s: float, masks: FrameMasks) -> None:
        """Masks that came apart from their frame (a masks topic): see :class:`ViewMasks`."""
        self.view_masks.add(stamp_s, masks)

    # -- the worker ----------------------------------------------------------------------------------------

    def reset(self) -> None:
        """The map was reset: forget instances, votes and keyframes (IDs are not reused)."""
        with self._pending_lock:
            self._pending.clear()
        self._unprocessed.clear()
        self.tracker.reset()
        self.votes.clear()
        self.masks.clear()
        self.view_masks.clear()
        self.pool.clear()
        self.gate.reset()
        self.last_snapshot = None

    def state(self) -> tuple[dict, dict]:
        """(tracker state, arrays): what a map file keeps of the object layer: the tracker's instances, the
        boundary votes and, once masks were fused, the mask instances (``mask_fusion`` in the tracker state)."""
        tracker_state, arrays = self.tracker.state(), dict(self.votes.state())
        if self.masks.views_fused:
            tracker_state['mask_fusion'], mask_arrays = self.masks.state()
            arrays.update(mask_arrays)
        return tracker_state, arrays

    def restore(self, tracker_state: dict | None, arrays: dict | None) -> int:
        """Replace the instances, votes and mask instances by saved ones (a :meth:`state`); the number of
        instances. Raises ValueError."""
        self.reset()
        mask_fusion = None
        if tracker_state is not None:
            tracker_state = dict(tracker_state)
            mask_fusion = tracker_state.pop('mask_fusion', None)
            self.tracker.restore(tracker_state)
        if arrays:
            self.votes.restore(arrays)
        if mask_fusion is not None:
            self.masks.restore(mask_fusion, arrays or {})
        return len(self.tracker.tracks)

    def pending_candidates(self) -> int:
        """Keyframe candidates waiting for the next :meth:`update`, or for their boundary votes and detections."""
        return len(self._pending) + len(self._unprocessed)

    def _take_candidates(self) -> list[FrameView]:
        with self._pending_lock:
            views = list(self._pending)
            self._pending.clear()
            return views

    def update(
        self,
        points: np.ndarray,
        colors: np.ndarray,
        normals: np.ndarray,
        stamp_s: float,
        map_version: int = 0,
        all_candidates: bool = False,
    ) -> ObjectsSnapshot:
        """Recompute the instances, keyframes and markers from the map's surface (points, colours, normals).

        Every new keyframe candidate enters the pool and has its masks fused; at most ``candidates_per_update``
        of them are segmented for boundary votes and shown to the detector (the rest wait for the next update),
        or all of them with ``all_candidates`` (offline processing).
        """
        cfg = self.config
        timing: dict[str, float] = {}
        started = tick = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal tick
            now = time.perf_counter()
            timing[name] = (now - tick) * 1000.0
            tick = now

        # Every candidate enters the pool at once (a question asked early sees every view there is); the image work
        # on them, boundary votes and detections, is done a few views per update (all of them offline).
        new_views = self._take_candidates()
        for view in new_views:
            self.pool.add(view)
        pooled = {id(view) for view in self.pool.views}
        self._unprocessed.extend(new_views)
        self._unprocessed = collections.deque(v for v in self._unprocessed if id(v) in pooled)
        budget = len(self._unprocessed) if all_candidates else cfg.candidates_per_update
        processed = [self._unprocessed.popleft() for _ in range(min(budget, len(self._unprocessed)))]
        for view in processed:
            if view.masks is None:  # masks say where objects end better than image boundaries do
                self.votes.add_view(view)
        lap('votes')
        detections = self._detect(processed)
        lap('detector')
        voxels = surface_voxels(points, colors, normals, self.mapping.voxel_size_m)
        segment_instances: list[int] = []
        masked = self.view_masks.take([*new_views, *self.pool.views], self.pool.views)
        if cfg.detector_masks:
            masked += self.view_masks.take_detected(detections)
        if self.masks.views_fused or masked:
            structure = find_structure(voxels, cfg)
            for view, masks in masked:
                self.masks.add_view(view, masks, voxels, structure)
            lap('mask_fusion')
            self.masks.consolidate()
            labels, segment_instances = self.masks.segment(voxels, structure)
            segmentation = Segmentation(voxels, structure, labels, len(segment_instances))
        else:
            segmentation = segment_surface(voxels, cfg, self.votes)
        lap('segmentation')
        # Mask instances are confirmed by the fusion (mask_min_observations); geometric segments by the tracker.
        voxel_ids = self._track(voxels, segmentation, stamp_s, confirm=not self.masks.views_fused)
        for instance_id, mask_instance in zip(self._segment_ids, segment_instances):
            for label, weight in self.masks.take_new_label_votes(mask_instance).items():
                self.tracker.vote_label(instance_id, label, weight)
        lap('tracking')
        table = VoxelLabels(voxels.keys, voxel_ids, voxels.normals, self.mapping.voxel_size_m)
        self._label_views(table, detections)
        instances = self.tracker.published()
        keyframes = self.choose_keyframes(cfg.keyframe_selection, cfg.num_keyframes)
        seen_in: dict[int, list[int]] = collections.defaultdict(list)
        for position, keyframe in enumerate(keyframes):
            for marker in keyframe.markers:
                seen_in[marker.id].append(position)
        lap('keyframes')
        bev, bev_markers = self._bev(points, colors, table, instances)
        lap('bev')
        timing['total'] = (time.perf_counter() - started) * 1000.0
        for name, count in [*self.masks.counts.items(), *self.view_masks.counts.items()]:  # totals: set, not added
            self.counts[name] = count
        snapshot = ObjectsSnapshot(
            float(stamp_s),
            int(map_version),
            tuple(self.tracker.with_keyframes(instances, seen_in)),
            bev,
            tuple(bev_markers),
            tuple(keyframes),
            self.style,
            timing,
            segmentation,
            voxel_ids,
        )
        self.last_snapshot = snapshot
        return snapshot

    def _track(self, voxels: SurfaceVoxels, segmentation: Segmentation, stamp_s: float, confirm: bool) -> np.ndarray:
        """Fit each segment's box, match the segments to the instances; the instance id of every voxel (0: none,
        or a segment waiting for confirmation)."""
        v = self.mapping.voxel_size_m
        observations, segments = [], segmentation.members()
        if confirm:  # mask instances were joined by view consensus; geometric joins of instances wait (tracker)
            parts = self.tracker.keep_apart([voxels.keys[m] for m in segments])
            segments = [members[part] for members, found in zip(segments, parts) for part in found]
        for members in segments:
            floor_z = float(np.median(segmentation.structure.floor_height_m[members]))
            support_z = _support_height(voxels, segmentation, members, floor_z)
            # The ring of the support's own surface that a segment's border often takes along stays out of its box.
            on_support = (np.abs(voxels.points[members, 2] - support_z) < 0.5 * v) & (voxels.normals[members, 2] > 0.9)
            body = members[~on_support] if np.count_nonzero(~on_support) >= 4 else members
            box = fit_box(voxels.points[body], v, floor_z=support_z, trim=self.config.box_trim)
            mean_rgb = tuple(int(c) for c in np.rint(voxels.colors[members].mean(axis=0)))
            observations.append(SegmentObservation(voxels.keys[members], box, mean_rgb))
        ids = self._segment_ids = self.tracker.update(observations, stamp_s, confirm)
        voxel_ids = np.zeros(len(voxels), np.int64)
        for members, instance_id in zip(segments, ids):
            voxel_ids[members] = instance_id
        return voxel_ids

    def _label_views(self, table: VoxelLabels, detections: list[tuple[FrameView, list[Detection]]]) -> None:
        """Label the candidate views with the instances they show (views off the map get none), and let the
        detections of the new views vote for the labels of the instances they cover."""
        self._views = list(self.pool.views)
        depth_range = (self.mapping.depth_min_m, self.mapping.depth_max_m)
        coarse = [label_view(view, table, 2, depth_range) for view in self._views]
        self._visible = [
            labels.visible_px if labels.surface_agreement >= self.config.min_surface_agreement else None
            for labels in coarse
        ]
        self._view_labels = coarse  # the keyframes' markers come from these too
        self.counts['views_off_the_map'] = sum(v is None for v in self._visible)
        for view, found in detections:
            k = next((k for k, other in enumerate(self._views) if other is view), None)
            if k is None or self._visible[k] is None:
                continue
            labels = coarse[k]
            votes = fuse_detections(
                found, labels.label_image, labels.step, (view.depth_step - 1) // 2, view.color.shape
            )
            for instance_id, label, weight in votes:
                self.tracker.vote_label(instance_id, label, weight)

    def _detect(self, views: list[FrameView]) -> list[tuple[FrameView, list[Detection]]]:
        """(view, detections) of the new candidates; a detector that fails or returns garbage is skipped."""
        if self.detector is None:
            return []
        found = []
        for view in views:
            try:
                found.append((view, checked_detections(self.detector.detect(view.color), view.color.shape)))
            except Exception as error:  # a learned model failing must not stop the geometric instances
                self.counts['detector_errors'] += 1
                if self.counts['detector_errors'] in (1, 10, 100) or self.counts['detector_errors'] % 1000 == 0:
                    logger.warning(
                        'detector %s failed on frame %d (%d failures so far; instances keep their geometry): %r',
                        type(self.detector).__name__,
                        view.index,
                        self.counts['detector_errors'],
                        error,
                    )
        return found

    def choose_keyframes(self, method: str, count: int) -> list[Keyframe]:
        """Keyframes (time order, with markers and their rank) chosen by ``method`` among the candidates labelled
        by the last :meth:`update`; the update itself uses the configured method and count."""
        area = _area_scale(self._views[0].intrinsics) if self._views else 1.0
        chosen = select_keyframes(
            self._views, self._visible, count, method, max(1, int(self.config.marker_min_area_px * area))
        )
        keyframes = []
        for rank, k in sorted(enumerate(chosen), key=lambda ranked: ranked[1]):
            view = self._views[k]
            markers: tuple[Marker, ...] = ()
            if self._visible[k] is not None:
                minimum = max(1, int(self.config.marker_min_area_px * _area_scale(view.intrinsics)))
                markers = tuple(_markers_in_view(self._view_labels[k], view, minimum))
            keyframes.append(
                Keyframe(view.index, view.stamp_s, view.color, view.intrinsics, view.T_map_camera, markers, rank)
            )
        return keyframes

    def _bev(
        self, points: np.ndarray, colors: np.ndarray, table: VoxelLabels, instances: list[Instance]
    ) -> tuple[BevImage, list[Marker]]:
        m = self.mapping
        bev = map_bev(points, colors, m)
        point_ids = np.append(np.maximum(table.lookup(np.asarray(points, dtype=np.float64).reshape(-1, 3)), 0), 0)
        label_image = point_ids[bev.top_point_index]  # index -1 (no point) reads the appended 0
        # A marker in a BEV of 512 px covers about a 40 px disc: objects need fewer pixels there.
        min_area = max(4, int(self.config.marker_min_area_px * (m.bev_size_px / 640.0) ** 2 / 16))
        markers = place_markers(label_image, [i.id for i in instances], min_area_px=min_area)
        placed = {marker.id for marker in markers}
        # Objects hidden from above (under a table): the marker goes on their footprint.
        for instance in instances:
            if instance.id in placed:
                continue
            footprint = _footprint_mask(bev, instance)
            markers.extend(place_markers(np.where(footprint, instance.id, 0), [instance.id]))
        return bev, markers


def _area_scale(intrinsics: CameraIntrinsics) -> float:
    """Image area relative to 640x480, the size the pixel-count settings are given for."""
    return intrinsics.width * intrinsics.height / (640.0 * 480.0)


def _support_height(voxels: SurfaceVoxels, segmentation: Segmentation, members: np.ndarray, floor_z: float) -> float:
    """Height of the surface a segment stands on: the top of whatever lies just below its lowest voxels."""
    v = voxels.voxel_size_m
    z = voxels.points[members, 2]
    bottom = z.min()
    low = members[z <= bottom + v]
    keys = voxels.keys[low]
    label = segmentation.labels[members[0]]
    best = None
    for depth in (1, 2, 3):
        index = np.searchsorted(voxels.keys, keys - depth)
        index[index >= len(voxels.keys)] = 0
        hit = index[(voxels.keys[index] == keys - depth)]
        hit = hit[segmentation.labels[hit] != label]
        if len(hit):
            best = float(np.max(voxels.points[hit, 2]))
            break
    return floor_z if best is None else max(best, floor_z)


def _markers_in_view(labels: ViewLabels, view: FrameView, min_area_px: int) -> list[Marker]:
    """Markers in the colour image's pixels from a view's label image (one label pixel = step x step pixels)."""
    step = labels.step
    label_image = np.where(labels.label_image > 0, labels.label_image, 0)
    minimum = max(1, int(math.ceil(min_area_px / (step * step))))
    offset = (view.depth_step - 1) // 2
    return [
        Marker(m.id, m.u * step + offset, m.v * step + offset, m.visible_px * step * step)
        for m in place_markers(label_image, min_area_px=minimum)
    ]


def _footprint_mask(bev: BevImage, instance: Instance) -> np.ndarray:
    corners = instance.box.corners()[:4, :2]
    pixel = bev.map_to_pixel(corners)
    mask = np.zeros(bev.image.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(pixel[:, ::-1]).astype(np.int32), 1)
    return mask.astype(bool)
