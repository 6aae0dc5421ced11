"""Scoring instances, markers and keyframes against ground truth (synthetic scenes, annotated real scenes).

Used by ``bench/instances.py`` and the tests; nothing here is needed at run time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from gpt4scene_ros.objects.boxes import OrientedBox, box_iou

if TYPE_CHECKING:
    from gpt4scene_ros.objects.scene_objects import Keyframe

SMALL_OBJECT_M = 0.15
"""Objects whose largest side is under this are 'small' in the scores."""


@dataclass(frozen=True)
class TruthObject:
    id: int
    label: str
    box: OrientedBox
    tags: tuple = ()

    @property
    def small(self) -> bool:
        return max(self.box.size) < SMALL_OBJECT_M


def load_truth(path: str | os.PathLike[str], T_map_world: npt.ArrayLike | None = None) -> list[TruthObject]:
    """Objects of an ``instances.json`` (synthetic generator, or hand-made annotations), moved into the map frame.

    ``T_map_world`` (dataset world -> map) may only turn about z and shift: boxes stay upright.
    """
    record = json.loads(Path(path).read_text())
    T = np.eye(4) if T_map_world is None else np.asarray(T_map_world, dtype=np.float64)
    yaw_offset = float(np.arctan2(T[1, 0], T[0, 0]))
    objects = []
    for item in record['objects']:
        center = T[:3, :3] @ np.asarray(item['center'], dtype=np.float64) + T[:3, 3]
        objects.append(
            TruthObject(
                int(item['id']),
                str(item.get('label', '')),
                OrientedBox(tuple(center), item['size'], float(item.get('yaw', 0.0)) + yaw_offset),
                tuple(item.get('tags', ())),
            )
        )
    return objects


@dataclass(frozen=True)
class Matching:
    """A one-to-one assignment of predicted instances to true objects (Hungarian on box IoU)."""

    iou: np.ndarray
    """truth x prediction IoU matrix."""
    pairs: dict
    """truth index -> prediction index, for pairs with IoU > 0."""
    truth: tuple
    predicted_ids: tuple

    def best_iou(self) -> np.ndarray:
        best = np.zeros(len(self.truth))
        for t, p in self.pairs.items():
            best[t] = self.iou[t, p]
        return best

    def recall(self, threshold: float, subset: Callable[[TruthObject], bool] | None = None) -> float:
        best = self.best_iou()
        chosen = [k for k in range(len(self.truth)) if subset is None or subset(self.truth[k])]
        return float(np.mean(best[chosen] >= threshold)) if chosen else float('nan')

    def precision(self, threshold: float) -> float:
        if not self.predicted_ids:
            return float('nan')
        return float(np.sum(self.best_iou() >= threshold) / len(self.predicted_ids))

    def truth_of(self, threshold: float = 0.25) -> dict:
        """Predicted instance id -> true object id, for matches at ``threshold``."""
        return {self.predicted_ids[p]: self.truth[t].id for t, p in self.pairs.items() if self.iou[t, p] >= threshold}


def observed_truth(
    truth: Iterable[TruthObject], map_points: npt.ArrayLike, min_voxels: int = 30, margin_m: float = 0.01
) -> tuple[list[TruthObject], list[TruthObject]]:
    """(observed, unobserved) true objects: an object counts when the map has at least ``min_voxels`` surface
    voxels inside its box (one seen only beyond the mapping range, or always hidden, is not in the map)."""
    observed: list[TruthObject] = []
    unobserved: list[TruthObject] = []
    for t in truth:
        (observed if np.sum(t.box.contains(map_points, margin_m)) >= min_voxels else unobserved).append(t)
    return observed, unobserved


class Boxed(Protocol):
    """What :func:`match_instances` matches: an instance (or a true object) with an ``id`` and a ``box``."""

    @property
    def id(self) -> int: ...
    @property
    def box(self) -> OrientedBox: ...


def match_instances(instances: Iterable[Boxed], truth: Iterable[TruthObject]) -> Matching:
    """Match predicted instances (anything with ``.id`` and ``.box``) to true objects."""
    instances, truth = list(instances), list(truth)
    iou = np.array([[box_iou(t.box, i.box) for i in instances] for t in truth]).reshape(len(truth), len(instances))
    pairs: dict[int, int] = {}
    if iou.size:
        rows, cols = linear_sum_assignment(-iou)
        pairs = {int(r): int(c) for r, c in zip(rows, cols) if iou[r, c] > 0}
    return Matching(iou, pairs, tuple(truth), tuple(i.id for i in instances))


def marker_correctness(
    keyframes: Iterable[Keyframe], sequence_dir: str | os.PathLike[str], truth_of: dict
) -> tuple[int, int]:
    """(correct, total) keyframe markers: a marker is correct when the true instance mask of its frame at its pixel
    is the object its ID was matched to. Markers of unmatched IDs count as wrong."""
    correct = total = 0
    for keyframe in keyframes:
        path = Path(sequence_dir) / f'frame-{keyframe.index:06d}.instance.png'
        mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise FileNotFoundError(f'no ground-truth instance image {path}')
        for marker in keyframe.markers:
            total += 1
            u, v = int(round(marker.u)), int(round(marker.v))
            if 0 <= v < mask.shape[0] and 0 <= u < mask.shape[1] and truth_of.get(marker.id) == int(mask[v, u]):
                correct += 1
    return correct, total


def keyframe_coverage(keyframes: Iterable[Keyframe], instance_ids: Iterable[int]) -> float:
    """Fraction of ``instance_ids`` that carry a marker in at least one keyframe."""
    wanted = set(instance_ids)
    if not wanted:
        return float('nan')
    marked = {m.id for k in keyframes for m in k.markers}
    return len(wanted & marked) / len(wanted)


@dataclass
class IdHistory:
    """Which predicted ID each true object was matched to, update after update, and the switches."""

    last: dict = field(default_factory=dict)
    switches: int = 0
    observations: int = 0

    def add(self, truth_of: dict) -> None:
        """``truth_of`` (predicted id -> true id) of one update."""
        for predicted, true_id in truth_of.items():
            self.observations += 1
            previous = self.last.get(true_id)
            if previous is not None and previous != predicted:
                self.switches += 1
            self.last[true_id] = predicted
