"""The question files of the benchmarks, read into one record per question.

Formats (the files these benchmarks publish):
- ``scanqa``: a JSON list of ``{question_id, scene_id, question, answers, object_ids}`` (ScanQA v1.0);
- ``sqa3d``: the balanced questions file (``{"questions": [{question_id, scene_id, situation, question}]}``)
  and its annotations file beside it (``..._sqa_annotations_...``: ``{"annotations": [{question_id,
  answers: [{answer}]}]}``); either file may be named;
- ``scanrefer``: a JSON list of ``{scene_id, object_id, ann_id, description, object_name}`` (ScanRefer); the
  question id is ``<scene_id>|<object_id>|<ann_id>``;
- ``multi3drefer``: a JSON list of ``{scene_id, object_ids, ann_id, description, eval_type}``;
- ``scan2cap``: ScanRefer's file; one question per object, its descriptions the references, id
  ``<scene_id>|<object_id>``;
- ``openeqa``: a JSON list of ``{question_id, question, answer, category, episode_history}`` (OpenEQA v0); the
  scene is the episode (``scannet-v0/<episode>``).

A file of another benchmark, or with fields missing, raises :class:`AnnotationError` naming the file and the
fields (the command-line tools exit with 2).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCHMARKS = ('scanqa', 'sqa3d', 'scanrefer', 'multi3drefer', 'scan2cap', 'openeqa')
GROUNDING_BENCHMARKS = ('scanrefer', 'multi3drefer', 'scan2cap')
TASK_OF = {
    'scanqa': 'qa',
    'sqa3d': 'qa',
    'scanrefer': 'ground',
    'multi3drefer': 'multi_ground',
    'scan2cap': 'caption',
    'openeqa': 'qa',
}
"""The SceneQuery task each benchmark's questions are asked as."""


class AnnotationError(ValueError):
    """An annotation file that is not the benchmark's, or misses fields; the message names the file."""


@dataclass(frozen=True)
class Question:
    """One question of a benchmark, whatever its file looked like."""

    question_id: str
    scene_id: str
    """The scene (ScanNet) or episode (OpenEQA) it is asked about: a folder under the scans folder."""
    question: str
    """The question, or the description to ground (ScanRefer, Multi3DRefer); empty for captions."""
    answers: tuple[str, ...] = ()
    """Reference answers (QA) or captions (Scan2Cap)."""
    object_ids: tuple[int, ...] = ()
    """The benchmark's ground-truth object ids: the target(s) to ground, the object to caption."""
    situation: str = ''
    category: str = ''
    """OpenEQA's category, ScanRefer's unique/multiple (filled in from the scene's objects), Multi3DRefer's
    eval_type."""


def read_questions(benchmark: str, path: str | os.PathLike[str]) -> list[Question]:
    """Every question of ``benchmark``'s annotation file ``path``; AnnotationError when it cannot be read as one."""
    if benchmark not in BENCHMARKS:
        raise AnnotationError(f'unknown benchmark {benchmark!r}; expected one of {list(BENCHMARKS)}')
    path = Path(path)
    records = _load(path)
    reader = {
        'scanqa': _scanqa,
        'sqa3d': _sqa3d,
        'scanrefer': _scanrefer,
        'multi3drefer': _multi3drefer,
        'scan2cap': _scan2cap,
        'openeqa': _openeqa,
    }[benchmark]
    questions = reader(path, records)
    seen: set[str] = set()
    for question in questions:
        if question.question_id in seen:
            raise AnnotationError(f'{path}: question_id {question.question_id!r} appears twice')
        seen.add(question.question_id)
    return questions


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise AnnotationError(f'{path}: no such annotation file') from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AnnotationError(f'{path}: not a JSON file ({error})') from None


def _records(path: Path, data: Any, benchmark: str, fields: tuple[str, ...], key: str | None = None) -> list[dict]:
    """The list of records, each checked to have ``fields``; the error names the first record's missing ones."""
    if key is not None:
        if not isinstance(data, dict) or key not in data:
            raise AnnotationError(f'{path}: not a {benchmark} file: expected a JSON object with a {key!r} list')
        data = data[key]
    if not isinstance(data, list) or not data:
        raise AnnotationError(f'{path}: not a {benchmark} file: expected a non-empty JSON list of questions')
    for position, record in enumerate(data):
        missing = [f for f in fields if not isinstance(record, dict) or f not in record]
        if missing:
            raise AnnotationError(
                f'{path}: not a {benchmark} file: record {position} lacks the fields {missing} '
                f'(a {benchmark} record has {list(fields)})'
            )
    return data


def _strings(path: Path, values: Any, what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise AnnotationError(f'{path}: {what} must be a list of strings, got {values!r:.60}')
    return tuple(values)


def _ints(path: Path, values: Any, what: str) -> tuple[int, ...]:
    if isinstance(values, (int, str)):
        values = [values]
    try:
        return tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise AnnotationError(f'{path}: {what} must be integer object ids, got {values!r:.60}') from None


def _scanqa(path: Path, data: Any) -> list[Question]:
    records = _records(path, data, 'scanqa', ('question_id', 'scene_id', 'question', 'answers'))
    return [
        Question(
            str(r['question_id']),
            str(r['scene_id']),
            str(r['question']),
            _strings(path, r['answers'], f'answers of {r["question_id"]}'),
            _ints(path, r.get('object_ids', []), f'object_ids of {r["question_id"]}'),
        )
        for r in records
    ]


def _sqa3d(path: Path, data: Any) -> list[Question]:
    """Either file of the pair; the other is found beside it by its name."""
    if isinstance(data, dict) and 'annotations' in data and 'questions' not in data:
        questions_path = path.with_name(path.name.replace('sqa_annotations', 'questions'))
        annotations_path, annotations = path, data
        questions = _load(questions_path) if questions_path != path else None
    else:
        questions_path, questions = path, data
        annotations_path = path.with_name(path.name.replace('questions', 'sqa_annotations'))
        if annotations_path == path:
            raise AnnotationError(f'{path}: not an SQA3D questions file (its name has no "questions")')
        annotations = _load(annotations_path)
    question_records = _records(
        questions_path, questions, 'sqa3d', ('question_id', 'scene_id', 'situation', 'question'), 'questions'
    )
    answer_records = _records(annotations_path, annotations, 'sqa3d', ('question_id', 'answers'), 'annotations')
    answers = {}
    for record in answer_records:
        texts = record['answers']
        if not isinstance(texts, list) or not all(isinstance(a, dict) and 'answer' in a for a in texts):
            raise AnnotationError(f'{annotations_path}: answers of {record["question_id"]} must be [{{"answer"}}]')
        answers[str(record['question_id'])] = tuple(str(a['answer']) for a in texts)
    missing = [str(r['question_id']) for r in question_records if str(r['question_id']) not in answers]
    if missing:
        raise AnnotationError(f'{annotations_path}: no answers for {len(missing)} questions, e.g. {missing[:3]}')
    return [
        Question(
            str(r['question_id']),
            str(r['scene_id']),
            str(r['question']),
            answers[str(r['question_id'])],
            situation=str(r['situation']),
        )
        for r in question_records
    ]


def _scanrefer(path: Path, data: Any) -> list[Question]:
    records = _records(path, data, 'scanrefer', ('scene_id', 'object_id', 'ann_id', 'description'))
    return [
        Question(
            f'{r["scene_id"]}|{int(r["object_id"])}|{r["ann_id"]}',
            str(r['scene_id']),
            str(r['description']),
            object_ids=_ints(path, r['object_id'], 'object_id'),
            category=str(r.get('object_name', '')),
        )
        for r in records
    ]


def _multi3drefer(path: Path, data: Any) -> list[Question]:
    records = _records(path, data, 'multi3drefer', ('scene_id', 'object_ids', 'ann_id', 'description', 'eval_type'))
    return [
        Question(
            f'{r["scene_id"]}|{r["ann_id"]}',
            str(r['scene_id']),
            str(r['description']),
            object_ids=_ints(path, r['object_ids'], 'object_ids'),
            category=str(r['eval_type']),
        )
        for r in records
    ]


def _scan2cap(path: Path, data: Any) -> list[Question]:
    records = _records(path, data, 'scan2cap', ('scene_id', 'object_id', 'description'))
    captions: dict[tuple[str, int], list[str]] = defaultdict(list)
    for r in records:
        captions[(str(r['scene_id']), int(r['object_id']))].append(str(r['description']))
    return [
        Question(f'{scene}|{object_id}', scene, '', tuple(texts), (object_id,))
        for (scene, object_id), texts in captions.items()
    ]


def _openeqa(path: Path, data: Any) -> list[Question]:
    records = _records(path, data, 'openeqa', ('question_id', 'question', 'answer', 'category', 'episode_history'))
    return [
        Question(
            str(r['question_id']),
            str(r['episode_history']),
            str(r['question']),
            _strings(path, r['answer'], f'answer of {r["question_id"]}'),
            category=str(r['category']),
        )
        for r in records
    ]


def scene_folder(scans: str | os.PathLike[str], scene_id: str) -> Path | None:
    """The folder of ``scene_id`` under ``scans``: the id as a relative path (``scannet-v0/<episode>``), else its
    last part; None when neither exists."""
    scans = Path(scans)
    for candidate in (scans / scene_id, scans / Path(scene_id).name):
        if candidate.is_dir():
            return candidate
    return None


def by_scene(questions: list[Question]) -> dict[str, list[Question]]:
    """Questions grouped by scene, scenes in order of first appearance."""
    groups: dict[str, list[Question]] = {}
    for question in questions:
        groups.setdefault(question.scene_id, []).append(question)
    return groups
