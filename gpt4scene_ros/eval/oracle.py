"""A ground-truth oracle in place of the VLM: the check that ids, boxes and IoU agree from question to score.

It answers through the same SceneQuery code as a model does (prompt built, answer parsed and grounded): a
grounding question with the tags of the map's instances that best overlap the true targets, a question or a
caption with its first reference. With a perfect map, ScanRefer Acc@0.25 is then 1.0; below that, the loss is
the map's and the instances', not the model's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpt4scene_ros.objects.boxes import OrientedBox, box_iou
from gpt4scene_ros.objects.tags import object_tag
from gpt4scene_ros.query.backends.base import VlmBackend
from gpt4scene_ros.query.prompts import Prompt


def best_instances(instances: tuple, targets: list[OrientedBox], min_iou: float = 0.0) -> list[Any]:
    """For each target box, the instance whose box overlaps it most (one-to-one not enforced), when the overlap
    is above ``min_iou``."""
    chosen = []
    for target in targets:
        ious = np.array([box_iou(instance.box, target) for instance in instances])
        if len(ious) and ious.max() > min_iou:
            chosen.append(instances[int(np.argmax(ious))])
    return chosen


class OracleBackend(VlmBackend):
    """Answers with a text fixed in advance (set per question by :meth:`set_answer`)."""

    name = 'oracle'

    def __init__(self) -> None:
        self.text = ''

    def set_answer(self, text: str) -> None:
        self.text = text

    def answer_for(self, task: str, instances: tuple, targets: list[OrientedBox], references: tuple) -> str:
        """The oracle's answer to a question of ``task`` whose true objects have the boxes ``targets``."""
        if task in ('ground', 'multi_ground'):
            found = best_instances(instances, targets)
            return ' '.join(object_tag(instance.id) for instance in found) or 'not found'
        return references[0] if references else ''

    def preprocess(self, prompt: Prompt) -> Prompt:
        return prompt

    def generate(self, inputs: Any, timeout_s: float) -> str:
        return self.text
