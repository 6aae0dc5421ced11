"""Predictions scored against a benchmark's questions: which metric for which benchmark, and the bookkeeping
(questions without a prediction count as wrong, predictions for unknown questions are reported and not scored,
OpenEQA marks kept across runs so that only the unmarked are asked again).

Predictions: a JSON list of ``{"question_id", "answer"}``, plus for grounding ``"object_ids"`` and ``"boxes"``
(``{"center", "size", "yaw"}`` in the map frame; for ScanNet scans the map frame of ``gpt4scene-eval run`` is
the scan's axis-aligned frame, that of the ground-truth boxes).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpt4scene_ros.eval.answers import score_scanqa, score_sqa3d
from gpt4scene_ros.eval.benchmarks import AnnotationError, Question, scene_folder
from gpt4scene_ros.eval.grounding import score_multi3drefer, score_scan2cap, score_scanrefer
from gpt4scene_ros.eval.judge import Judge, JudgeError, mark_score
from gpt4scene_ros.eval.scannet_truth import read_scannet_objects
from gpt4scene_ros.objects.boxes import OrientedBox

logger = logging.getLogger(__name__)


@dataclass
class GroundTruth:
    """The benchmark objects of some scenes: (scene_id, object id) -> box and label."""

    boxes: dict[tuple[str, int], OrientedBox] = field(default_factory=dict)
    labels: dict[tuple[str, int], str] = field(default_factory=dict)
    missing_scenes: list[str] = field(default_factory=list)


def read_ground_truth(scans: str | os.PathLike[str], scene_ids: Iterable[str]) -> GroundTruth:
    """The ScanNet ground truth (:func:`gpt4scene_ros.eval.scannet_truth.read_scannet_objects`) of each scene
    found under ``scans``; scenes without a folder or ground truth are listed in ``missing_scenes``."""
    truth = GroundTruth()
    for scene_id in dict.fromkeys(scene_ids):
        folder = scene_folder(scans, scene_id)
        try:
            objects = read_scannet_objects(folder) if folder is not None else None
        except ValueError as error:
            logger.warning('%s: no ground truth: %s', scene_id, error)
            objects = None
        if objects is None:
            truth.missing_scenes.append(scene_id)
            continue
        for obj in objects:
            truth.boxes[(scene_id, obj.object_id)] = obj.box
            truth.labels[(scene_id, obj.object_id)] = obj.label
    return truth


def read_predictions(path: str | os.PathLike[str]) -> list[dict]:
    """A predictions file: a JSON list of objects with a ``question_id`` and an ``answer`` string."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise AnnotationError(f'{path}: no such predictions file') from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AnnotationError(f'{path}: not a JSON file ({error})') from None
    if not isinstance(data, list):
        raise AnnotationError(f'{path}: expected a JSON list of {{"question_id", "answer"}} objects')
    for position, record in enumerate(data):
        missing = [f for f in ('question_id', 'answer') if not isinstance(record, dict) or f not in record]
        if missing:
            raise AnnotationError(f'{path}: prediction {position} lacks the fields {missing}')
        if not isinstance(record['answer'], str):
            raise AnnotationError(f'{path}: prediction {position}: answer must be a string')
        try:
            prediction_boxes(record)
        except (TypeError, ValueError, KeyError) as error:
            raise AnnotationError(
                f'{path}: prediction {position}: boxes must be {{center, size, yaw}}: {error}'
            ) from None
    return data


def prediction_boxes(record: Mapping[str, Any]) -> list[OrientedBox]:
    return [OrientedBox(b['center'], b['size'], float(b.get('yaw', 0.0))) for b in record.get('boxes', []) or []]


def box_json(box: OrientedBox) -> dict:
    return {
        'center': [round(v, 4) for v in box.center],
        'size': [round(v, 4) for v in box.size],
        'yaw': round(box.yaw, 4),
    }


def score(
    benchmark: str,
    questions: list[Question],
    predictions: list[dict],
    truth: GroundTruth | None = None,
    judge: Judge | None = None,
    marks: dict[str, int] | None = None,
    on_mark: Callable[[str, int], None] | None = None,
) -> dict:
    """The benchmark's scores (percentages) with the counts behind them.

    ``truth``: ground-truth boxes (grounding benchmarks). ``judge`` and ``marks`` (OpenEQA): marks from an earlier
    run are kept, the others asked; ``on_mark(question_id, mark)`` sees each new one (to save it at once).
    """
    by_id = {q.question_id: q for q in questions}
    answered: dict[str, dict] = {}
    unknown = []
    for record in predictions:
        question_id = str(record['question_id'])
        if question_id in by_id:
            answered[question_id] = record
        else:
            unknown.append(question_id)
    if unknown:
        logger.warning('%d predictions for unknown question ids (not scored), e.g. %s', len(unknown), unknown[:3])
    result: dict[str, Any] = {
        'benchmark': benchmark,
        'questions': len(questions),
        'predicted': len(answered),
        'missing': len(questions) - len(answered),
        'unknown_question_ids': unknown,
    }

    def answer(q: Question) -> str:
        return str(answered.get(q.question_id, {}).get('answer', ''))

    def boxes(q: Question) -> list[OrientedBox]:
        return prediction_boxes(answered.get(q.question_id, {}))

    if not questions:  # a shard without scenes
        result['scores'] = {}
    elif benchmark == 'scanqa':
        result['scores'] = score_scanqa([(answer(q), list(q.answers)) for q in questions])
    elif benchmark == 'sqa3d':
        result['scores'] = score_sqa3d([(answer(q), list(q.answers), q.question) for q in questions])
    elif benchmark == 'openeqa':
        result.update(_score_openeqa(questions, answer, judge, dict(marks or {}), on_mark))
    else:
        if truth is None:
            raise AnnotationError(f'{benchmark} needs the ground-truth boxes: give --scans with the scenes')
        known = [q for q in questions if all((q.scene_id, i) in truth.boxes for i in q.object_ids)]
        if len(known) < len(questions):
            result['no_ground_truth'] = len(questions) - len(known)
            logger.warning('%d questions name objects without ground truth (not scored)', len(questions) - len(known))
        if not known:
            result['scores'] = {}
        elif benchmark == 'scanrefer':
            items = [
                (next(iter(boxes(q)), None), truth.boxes[(q.scene_id, q.object_ids[0])], _unique(q, truth))
                for q in known
            ]
            result['scores'] = score_scanrefer(items)
        elif benchmark == 'multi3drefer':
            items3 = [(boxes(q), [truth.boxes[(q.scene_id, i)] for i in q.object_ids], q.category) for q in known]
            result['scores'] = score_multi3drefer(items3)
        else:
            items4 = [
                (answer(q), next(iter(boxes(q)), None), truth.boxes[(q.scene_id, q.object_ids[0])], list(q.answers))
                for q in known
            ]
            result['scores'] = score_scan2cap(items4)
    return result


def _unique(question: Question, truth: GroundTruth) -> bool:
    """ScanRefer's "unique": the target is the only object of its label in the scene's ground truth."""
    target = truth.labels.get((question.scene_id, question.object_ids[0]), question.category)
    same = sum(1 for (scene, _), label in truth.labels.items() if scene == question.scene_id and label == target)
    return same <= 1


def _score_openeqa(
    questions: list[Question],
    answer: Callable[[Question], str],
    judge: Judge | None,
    marks: dict[str, int],
    on_mark: Callable[[str, int], None] | None,
) -> dict:
    unscored = []
    for q in questions:
        if q.question_id in marks:
            continue
        if judge is None:
            unscored.append(q.question_id)
            continue
        try:
            mark = judge.mark(q.question, q.answers[0] if q.answers else '', answer(q))
        except JudgeError as error:
            logger.warning('%s: %s', q.question_id, error)
            unscored.append(q.question_id)
            continue
        marks[q.question_id] = mark
        if on_mark is not None:
            on_mark(q.question_id, mark)
    marked = [q for q in questions if q.question_id in marks]
    categories: dict[str, list[float]] = {}
    for q in marked:
        categories.setdefault(q.category, []).append(mark_score(marks[q.question_id]))
    values = [mark_score(marks[q.question_id]) for q in marked]
    return {
        'scores': {'LLM-Match': sum(values) / len(values) if values else float('nan')},
        'by_category': {c: {'LLM-Match': sum(v) / len(v), 'count': len(v)} for c, v in sorted(categories.items())},
        'marks': marks,
        'unscored': unscored,
    }
