"""Benchmark questions from a generated room's ground truth, in the formats of ScanQA, ScanRefer, Multi3DRefer and
OpenEQA, so that ``gpt4scene-eval run`` has a benchmark to run here, end to end.

Kinds: counting ("How many chairs are in the room?"), colour ("What color is the sofa?"), support ("What is the
mug on?"), relative position ("What is the closest object to the bed?") and references ("the chair closest to
the sofa", "the red box"). Only questions with one right answer are asked: a colour or a support of a label that
occurs once, a nearest object that is nearer than the next by a margin. Object ids are the ground truth's
(``instances.json`` ids), which :func:`gpt4scene_ros.sim.scannet_export.write_scannet_scene` keeps as ScanNet
object ids.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

NUMBER_WORDS = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten')
COLOR_NAMES = {
    'red': (200, 40, 40),
    'green': (50, 160, 60),
    'blue': (40, 80, 200),
    'yellow': (220, 210, 50),
    'orange': (230, 130, 40),
    'purple': (140, 60, 180),
    'pink': (230, 120, 190),
    'brown': (130, 80, 40),
    'black': (25, 25, 25),
    'white': (235, 235, 235),
    'gray': (128, 128, 128),
}
NEAREST_MARGIN_M = 0.3
"""The nearest object must be this much nearer than the next one for a "closest" question."""


def color_name(rgb: Any) -> str:
    """The name of the palette colour nearest to ``rgb``."""
    names = list(COLOR_NAMES)
    distances = [np.linalg.norm(np.subtract(rgb, COLOR_NAMES[n], dtype=float)) for n in names]
    return names[int(np.argmin(distances))]


def _nearest(objects: list[dict], anchor: dict, among: list[dict]) -> dict | None:
    """The object of ``among`` nearest to ``anchor`` (footprint centres), when it is clearly the nearest."""
    others = [o for o in among if o['id'] != anchor['id']]
    if not others:
        return None
    distances = [float(np.linalg.norm(np.subtract(o['center'][:2], anchor['center'][:2]))) for o in others]
    order = np.argsort(distances)
    if len(others) > 1 and distances[order[1]] - distances[order[0]] < NEAREST_MARGIN_M:
        return None
    return others[int(order[0])]


def make_questions(objects: list[dict], scene_id: str) -> dict[str, list[dict]]:
    """``{"scanqa": [...], "scanrefer": [...], "multi3drefer": [...], "openeqa": [...]}`` records about the
    ground-truth ``objects`` (the ``objects`` of a generated ``instances.json``)."""
    counts = Counter(o['label'] for o in objects)
    by_id = {o['id']: o for o in objects}
    unique = [o for o in objects if counts[o['label']] == 1]
    qa: list[tuple[str, list[str], list[int], str]] = []  # question, answers, object ids, OpenEQA category
    for label, count in sorted(counts.items()):
        if count <= len(NUMBER_WORDS) - 1:
            plural = label if label.endswith('s') else label + 's'
            ids = [o['id'] for o in objects if o['label'] == label]
            if count > 1:
                qa.append((f'How many {plural} are in the room?', [NUMBER_WORDS[count]], ids, 'spatial understanding'))
    for o in unique:
        qa.append(
            (f'What color is the {o["label"]}?', [color_name(o['color_rgb'])], [o['id']], 'attribute recognition')
        )
        support = by_id.get(o.get('on_top_of'))
        if support is not None:
            qa.append((f'What is the {o["label"]} on?', [support['label']], [o['id']], 'object localization'))
        near = _nearest(objects, o, objects)
        if near is not None:
            qa.append(
                (
                    f'What is the closest object to the {o["label"]}?',
                    [near['label']],
                    [near['id']],
                    'spatial understanding',
                )
            )
    scanqa = [
        {
            'question_id': f'{scene_id}-{k}',
            'scene_id': scene_id,
            'question': question,
            'answers': answers,
            'object_ids': ids,
            'object_names': [by_id[i]['label'] for i in ids],
        }
        for k, (question, answers, ids, _) in enumerate(qa)
    ]
    openeqa = [
        {
            'question_id': f'{scene_id}-eqa-{k}',
            'question': question,
            'answer': answers[0],
            'category': category,
            'episode_history': scene_id,
        }
        for k, (question, answers, _, category) in enumerate(qa)
    ]
    scanrefer, multi = _references(objects, scene_id, counts)
    return {'scanqa': scanqa, 'scanrefer': scanrefer, 'multi3drefer': multi, 'openeqa': openeqa}


def _references(objects: list[dict], scene_id: str, counts: Counter) -> tuple[list[dict], list[dict]]:
    scanrefer: list[dict] = []
    multi: list[dict] = []

    def refer(obj: dict, description: str) -> None:
        ann = sum(1 for r in scanrefer if r['object_id'] == str(obj['id']))
        scanrefer.append(
            {
                'scene_id': scene_id,
                'object_id': str(obj['id']),
                'object_name': obj['label'],
                'ann_id': str(ann),
                'description': description,
            }
        )

    for o in objects:
        if counts[o['label']] == 1:
            refer(o, f'the {color_name(o["color_rgb"])} {o["label"]}.')
            multi.append(_multi(scene_id, len(multi), f'the {o["label"]}.', [o['id']], 'st_wo_d'))
        else:
            anchors = [a for a in objects if counts[a['label']] == 1]
            for anchor in anchors:
                same = [s for s in objects if s['label'] == o['label']]
                if _nearest(objects, anchor, same) is o:
                    refer(o, f'the {o["label"]} closest to the {anchor["label"]}.')
                    multi.append(
                        _multi(
                            scene_id,
                            len(multi),
                            f'the {o["label"]} closest to the {anchor["label"]}.',
                            [o['id']],
                            'st_w_d',
                        )
                    )
                    break
    for label, count in sorted(counts.items()):
        if count > 1:
            ids = [o['id'] for o in objects if o['label'] == label]
            multi.append(_multi(scene_id, len(multi), f'all the {label}s in the room.', ids, 'mt'))
    absent = next(label for label in ('piano', 'bathtub', 'refrigerator', 'object') if label not in counts)
    multi.append(_multi(scene_id, len(multi), f'the {absent}.', [], 'zt_wo_d'))
    return scanrefer, multi


def _multi(scene_id: str, ann: int, description: str, ids: list[int], eval_type: str) -> dict:
    return {
        'scene_id': scene_id,
        'ann_id': str(ann),
        'description': description,
        'object_ids': ids,
        'eval_type': eval_type,
    }
