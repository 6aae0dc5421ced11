"""Grounding and dense-captioning metrics (ScanRefer, Multi3DRefer, Scan2Cap), in percent.

The rules are those of GPT4Scene's own scorer (``evaluate/utils/eval.py`` of Qi-Zhangyang/GPT4Scene-and-VLN-R1,
inherited from Chat-Scene's ``utils/eval.py``): a predicted box counts at a threshold when its 3D IoU with the
ground-truth box is at least that threshold (0.25 and 0.5). The IoU is :func:`~gpt4scene_ros.objects.boxes.box_iou`
of upright boxes turned about z; for the axis-aligned boxes of ScanNet it is the protocol's axis-aligned IoU.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from scipy.optimize import linear_sum_assignment

from gpt4scene_ros.eval.answers import caption_scores
from gpt4scene_ros.objects.boxes import OrientedBox, box_iou

IOU_THRESHOLDS = (0.25, 0.5)
MULTI3DREFER_TYPES = ('zt_w_d', 'zt_wo_d', 'st_w_d', 'st_wo_d', 'mt')
"""Multi3DRefer's query types: zero, single or multiple targets, with or without distractors of the same class."""
ZERO_TARGET_TYPES = ('zt_w_d', 'zt_wo_d')
SCAN2CAP_METRICS = ('CIDEr', 'BLEU-4', 'METEOR', 'ROUGE_L')


def _at(name: str, threshold: float) -> str:
    """A score's key at an IoU threshold: ``Acc@0.25``, ``Acc@0.5``."""
    return f'{name}@{threshold:g}'


def prediction_iou(predicted: OrientedBox | None, truth: OrientedBox) -> float:
    """3D IoU of a predicted box with the true one, 0 without a prediction.

    Both boxes are first moved so that the true one is centred at the origin (the IoU does not change):
    :func:`box_iou` intersects footprints in 32-bit floats, which at map coordinates of metres lose the last
    digits an IoU near a threshold needs.
    """
    if predicted is None:
        return 0.0
    offset = np.asarray(truth.center)
    return box_iou(
        OrientedBox(np.asarray(predicted.center) - offset, predicted.size, predicted.yaw),
        OrientedBox((0.0, 0.0, 0.0), truth.size, truth.yaw),
    )


def _mean_percent(values: Iterable[float]) -> float:
    """Mean of the values in percent; NaN for none."""
    chosen = list(values)
    return 100.0 * float(np.mean(chosen)) if chosen else math.nan


def score_scanrefer(items: list[tuple[OrientedBox | None, OrientedBox, bool]]) -> dict:
    """ScanRefer accuracy of (predicted box or None, true box, unique) items.

    ``Acc@0.25``, ``Acc@0.5``: the share of items whose box reaches that IoU (GPT4Scene's ``calc_scanrefer_score``;
    a missing box counts as a miss); ``count``; the same under ``unique`` (the target is the only object of its
    class in the scene) and ``multiple`` (NaN scores for an empty group).
    """
    if not items:
        raise ValueError('score_scanrefer needs at least one item')
    rows = [(prediction_iou(predicted, truth), unique) for predicted, truth, unique in items]

    def group(chosen: list[float]) -> dict:
        scores: dict = {_at('Acc', t): _mean_percent(value >= t for value in chosen) for t in IOU_THRESHOLDS}
        scores['count'] = len(chosen)
        return scores

    return {
        **group([value for value, _ in rows]),
        'unique': group([value for value, unique in rows if unique]),
        'multiple': group([value for value, unique in rows if not unique]),
    }


def _multi3drefer_f1(predicted: list[OrientedBox], truth: list[OrientedBox], eval_type: str) -> dict[float, float]:
    """F1 of one query at each IoU threshold, as GPT4Scene's ``calc_multi3dref_score``.

    A zero-target query scores 1 when nothing is predicted and 0 otherwise. Other queries pair predicted and true
    boxes one to one so that the summed IoU is largest (Hungarian); a pair at or above the threshold is a true
    positive, and F1 = 2 TP / (predicted + true).
    """
    if eval_type in ZERO_TARGET_TYPES:
        return dict.fromkeys(IOU_THRESHOLDS, 0.0 if predicted else 1.0)
    ious = np.array([[prediction_iou(p, t) for t in truth] for p in predicted]).reshape(len(predicted), len(truth))
    rows, cols = linear_sum_assignment(ious, maximize=True)
    matched = ious[rows, cols]
    return {t: 2.0 * int(np.sum(matched >= t)) / (len(predicted) + len(truth)) for t in IOU_THRESHOLDS}


def score_multi3drefer(items: list[tuple[list[OrientedBox], list[OrientedBox], str]]) -> dict:
    """Multi3DRefer F1 of (predicted boxes, true boxes, eval_type) items.

    ``F1@0.25``, ``F1@0.5`` (mean per-query F1), ``count``, and ``by_type``: the same for each of
    :data:`MULTI3DREFER_TYPES` (NaN scores for a type without queries). A zero-target type must come without true
    boxes and the others with some: anything else is an annotation error, raised as ``ValueError``.
    """
    if not items:
        raise ValueError('score_multi3drefer needs at least one item')
    per_query = []
    for index, (predicted, truth, eval_type) in enumerate(items):
        if eval_type not in MULTI3DREFER_TYPES:
            raise ValueError(f'Multi3DRefer item {index}: eval_type {eval_type!r} is not one of {MULTI3DREFER_TYPES}')
        if (eval_type in ZERO_TARGET_TYPES) == bool(truth):
            raise ValueError(f'Multi3DRefer item {index}: eval_type {eval_type!r} with {len(truth)} true boxes')
        per_query.append((eval_type, _multi3drefer_f1(list(predicted), list(truth), eval_type)))

    def group(chosen: list[dict[float, float]]) -> dict:
        scores: dict = {_at('F1', t): _mean_percent(f1[t] for f1 in chosen) for t in IOU_THRESHOLDS}
        scores['count'] = len(chosen)
        return scores

    return {
        **group([f1 for _, f1 in per_query]),
        'by_type': {kind: group([f1 for of_type, f1 in per_query if of_type == kind]) for kind in MULTI3DREFER_TYPES},
    }


def _with_sentence_marks(caption: str) -> str:
    """A caption between Scan2Cap's "sos" and "eos" words (unchanged when it has them already).

    Scan2Cap's reference corpus wraps every description so (``prepare_corpus``), and GPT4Scene's
    ``calc_scan2cap_score`` wraps the prediction to match: both words then count in BLEU, METEOR and ROUGE_L.
    """
    words = caption.split()
    return caption if words[:1] == ['sos'] and words[-1:] == ['eos'] else f'sos {caption} eos'


def score_scan2cap(items: list[tuple[str, OrientedBox | None, OrientedBox, list[str]]]) -> dict:
    """Scan2Cap scores of (predicted caption, its box or None, true box, reference captions) items, one per
    ground-truth object.

    ``CIDEr@0.25``, ``BLEU-4@0.25``, ``METEOR@0.25``, ``ROUGE_L@0.25``, the same at 0.5, and ``count``: Scan2Cap's
    m@kIoU as its paper defines it, each item's caption score (pycocoevalcap,
    :func:`~gpt4scene_ros.eval.answers.caption_scores`) times whether its box reaches the IoU, averaged over all
    items; an item without a box scores 0. Captions and references are wrapped in "sos ... eos" as in the protocol
    (:func:`_with_sentence_marks`). CIDEr's document frequencies come from the references of all items.

    Scan2Cap's and GPT4Scene's code instead score the whole corpus with the caption "sos eos" where the box misses.
    CIDEr is the same either way (that caption scores 0 and the corpus CIDEr is the per-item mean); BLEU-4, METEOR
    and ROUGE_L are not, since "sos" and "eos" still match there.
    """
    if not items:
        raise ValueError('score_scan2cap needs at least one item')
    ious = np.array([prediction_iou(box, truth) for _, box, truth, _ in items])
    pairs = {
        str(index): (
            _with_sentence_marks(caption) if box is not None else 'sos eos',
            [_with_sentence_marks(reference) for reference in references],
        )
        for index, (caption, box, _, references) in enumerate(items)
    }
    _, per_item = caption_scores(pairs)
    scores: dict = {}
    for threshold in IOU_THRESHOLDS:
        reached = ious >= threshold
        for metric in SCAN2CAP_METRICS:
            scores[_at(metric, threshold)] = float(np.mean(np.asarray(per_item[metric]) * reached))
    scores['count'] = len(items)
    return scores
