"""A benchmark run offline: per scene, the robot's pipeline (map, objects, keyframes, markers), then every question
through the same SceneQuery code as the service (:func:`gpt4scene_ros.query.scene_query.answer_query`), in
process, no DDS.

Layout of the output folder::

    scenes/<scene>/map/             what gpt4scene-process writes (BEV, instances, marked keyframes)
    scenes/<scene>/answers.jsonl    one prediction per line, written as it is made (a rerun skips them)
    scenes/<scene>/scene.json       how the scene went: ok, or the error; frames, instances, seconds
    predictions.json, scores.json, report.html, summary.json

A scene that fails is reported in ``summary.json`` and the run goes on; a scene folder that is missing is listed
as skipped. ``shard`` (i, n) takes the scenes whose position in the sorted scene list is i modulo n, so that n
independent jobs (a SLURM array, a Kubernetes indexed job) split a benchmark; ``merge`` joins their folders.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.common.settings.mapping import MappingConfig
from gpt4scene_ros.common.settings.query import QueryConfig
from gpt4scene_ros.eval.benchmarks import GROUNDING_BENCHMARKS as GROUNDING
from gpt4scene_ros.eval.benchmarks import TASK_OF, Question, by_scene, read_questions, scene_folder
from gpt4scene_ros.eval.oracle import OracleBackend, best_instances
from gpt4scene_ros.eval.report import write_report
from gpt4scene_ros.eval.scoring import GroundTruth, box_json, read_ground_truth, score
from gpt4scene_ros.io.scannet import is_scannet_folder
from gpt4scene_ros.objects.offline import process_sequence
from gpt4scene_ros.query.backends import make_backend
from gpt4scene_ros.query.backends.base import VlmBackend
from gpt4scene_ros.query.prompts import PromptTemplates, default_templates_file, first_ranked
from gpt4scene_ros.query.scene_query import ErrorCode, QueryRequest, answer_query

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    benchmark: str
    annotations: Path
    scans: Path
    out: Path
    query: QueryConfig = QueryConfig()
    mapping: MappingConfig = MappingConfig()
    instances: InstanceConfig = InstanceConfig()
    oracle: bool = False
    stride: int = 1
    max_frames: int = 0
    num_frames: int = 0
    """Keyframes per question (0: the query config's default_num_frames)."""

    @property
    def templates_file(self) -> Path:
        """The query node's prompt templates: its ``prompt_templates_file``, else the package's."""
        return Path(self.query.prompt_templates_file or default_templates_file())


def scene_key(scene_id: str) -> str:
    """A folder name for a scene id (OpenEQA's ids hold a slash)."""
    return scene_id.replace('/', '__')


def scene_dir(out: Path, scene_id: str) -> Path:
    return out / 'scenes' / scene_key(scene_id)


def read_answers(path: Path) -> dict[str, dict]:
    """The predictions of an answers.jsonl (a line cut short by a crash is ignored)."""
    answers = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and 'question_id' in record:
                answers[str(record['question_id'])] = record
    return answers


def map_scene(folder: Path, out: Path, settings: RunSettings) -> tuple[Any, dict]:
    """The last objects snapshot of a scan fused as gpt4scene-process does, and its summary. ScanNet exports are
    z-up in the frame of their ground truth: gravity alignment stays off there, so that boxes compare with it."""
    final: dict[str, Any] = {}

    def keep(snapshot: Any, frame_index: int, objects: Any) -> None:
        final['snapshot'] = snapshot

    summary = process_sequence(
        folder,
        out,
        settings.mapping,
        gravity='none' if is_scannet_folder(folder) else 'auto',
        stride=settings.stride,
        max_frames=settings.max_frames,
        progress=False,
        instances=settings.instances,
        on_update=keep,
    )
    if 'snapshot' not in final:
        raise ValueError(f'{folder}: no frame could be fused')
    return final['snapshot'], summary


def make_request(
    benchmark: str, question: Question, snapshot: Any, truth: GroundTruth | None, frames: int
) -> QueryRequest | None:
    """The SceneQuery request of a question; for a caption, the map's instance that overlaps the true object
    most (None when none does: the question cannot be asked)."""
    task = TASK_OF[benchmark]
    if task == 'caption':
        box = truth.boxes.get((question.scene_id, question.object_ids[0])) if truth else None
        found = best_instances(snapshot.instances, [box]) if box is not None else []
        if not found:
            return None
        return QueryRequest('', 'caption', object_ids=(found[0].id,), num_frames=frames)
    return QueryRequest(question.question, task, num_frames=frames, situation=question.situation)


def answer_scene(
    settings: RunSettings, scene_id: str, questions: list[Question], backend: VlmBackend | None
) -> dict[str, Any]:
    """Map one scene and answer its questions not answered yet; the scene's status record (also written to its
    ``scene.json``). A question the model failed on (``MODEL``: a server down, a timeout) is not written, so a
    rerun asks it again."""
    started = time.perf_counter()
    folder = scene_folder(settings.scans, scene_id)
    record: dict[str, Any] = {'scene_id': scene_id, 'questions': len(questions)}
    if folder is None:
        return {**record, 'status': 'skipped', 'reason': f'no folder for {scene_id} under {settings.scans}'}
    where = scene_dir(settings.out, scene_id)
    where.mkdir(parents=True, exist_ok=True)
    answers_file = where / 'answers.jsonl'
    done = read_answers(answers_file)
    pending = [q for q in questions if q.question_id not in done]
    record['answered_before'] = len(questions) - len(pending)
    if not pending:
        record.update(status='ok', seconds=0.0)
    else:
        record.update(_map_and_answer(settings, folder, where, pending, backend))
        record['seconds'] = round(time.perf_counter() - started, 2)
    (where / 'scene.json').write_text(json.dumps(record, indent=1))
    return record


def _map_and_answer(
    settings: RunSettings, folder: Path, where: Path, pending: list[Question], backend: VlmBackend | None
) -> dict[str, Any]:
    started = time.perf_counter()
    scene_id = pending[0].scene_id
    try:
        snapshot, summary = map_scene(folder, where / 'map', settings)
        mapped = time.perf_counter()
        truth = read_ground_truth(settings.scans, [scene_id]) if settings.benchmark in GROUNDING else None
        frames = settings.num_frames or settings.query.default_num_frames
        templates = PromptTemplates.from_yaml(settings.templates_file)
        shown = first_ranked(snapshot.keyframes, frames)
        positions = [k for k, keyframe in enumerate(snapshot.keyframes) if keyframe in shown]
        images = ['map/bev_marked.png', *(f'map/keyframes/{k:04d}.png' for k in positions)]
        model_failures = 0
        with (where / 'answers.jsonl').open('a') as stream:
            for question in pending:
                prediction = _answer(settings, question, snapshot, truth, frames, backend, templates)
                if prediction.pop('retry', False):
                    model_failures += 1
                    continue
                prediction['images'] = [f'scenes/{scene_key(scene_id)}/{name}' for name in images]
                stream.write(json.dumps(prediction) + '\n')
                stream.flush()
    except Exception as error:  # one scene failing must not stop the run: it is reported in the summary
        logger.exception('%s failed', scene_id)
        return {'status': 'failed', 'error': f'{type(error).__name__}: {error}'}
    return {
        'status': 'ok',
        'frames': summary['frames'],
        'integrated': summary['integrated'],
        'instances': summary['instances'],
        'model_failures': model_failures,
        'map_seconds': round(mapped - started, 2),
    }


def _answer(
    settings: RunSettings,
    question: Question,
    snapshot: Any,
    truth: GroundTruth | None,
    frames: int,
    backend: VlmBackend | None,
    templates: PromptTemplates,
) -> dict[str, Any]:
    request = make_request(settings.benchmark, question, snapshot, truth, frames)
    prediction: dict[str, Any] = {'question_id': question.question_id, 'scene_id': question.scene_id}
    if request is None:
        return {**prediction, 'answer': '', 'object_ids': [], 'boxes': [], 'error': 'no instance at the object'}
    if isinstance(backend, OracleBackend):
        targets = [truth.boxes[(question.scene_id, i)] for i in question.object_ids] if truth else []
        backend.set_answer(backend.answer_for(request.task, snapshot.instances, targets, question.answers))
    result = answer_query(request, settings.query, snapshot, backend, templates)
    objects = result.objects
    if request.task == 'caption':
        objects = tuple(i for i in snapshot.instances if i.id == request.object_ids[0])
    prediction.update(
        answer=result.answer,
        object_ids=[int(i.id) for i in objects],
        boxes=[box_json(i.box) for i in objects],
        model_ms=round(result.model_ms, 1),
    )
    if not result.success:
        prediction['error'] = result.message
        prediction['retry'] = result.error_code == ErrorCode.MODEL
    return prediction


_WORKER_BACKEND: dict[str, VlmBackend | None] = {}


def make_run_backend(settings: RunSettings) -> VlmBackend | None:
    """The oracle, or the backend the query settings name (made once per process and settings)."""
    if settings.oracle:
        return OracleBackend()
    key = repr(settings.query)
    if key not in _WORKER_BACKEND:
        _WORKER_BACKEND.clear()
        _WORKER_BACKEND[key] = make_backend(settings.query)
    return _WORKER_BACKEND[key]


def _scene_job(settings: RunSettings, scene_id: str, questions: list[Question]) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    return answer_scene(settings, scene_id, questions, make_run_backend(settings))


def shard_scenes(scene_ids: list[str], shard: tuple[int, int]) -> list[str]:
    """The scenes of shard i of n: positions i, i + n, ... of the sorted scene ids."""
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise ValueError(f'--shard {index}/{count}: expected i/n with 0 <= i < n')
    return [scene for k, scene in enumerate(sorted(scene_ids)) if k % count == index]


def run_benchmark(
    settings: RunSettings, workers: int = 1, shard: tuple[int, int] = (0, 1), judge: Any = None
) -> dict[str, Any]:
    """Answer every question of the shard's scenes (skipping those answered in an earlier run), then write
    predictions.json, scores.json, report.html and summary.json into ``settings.out``."""
    questions = read_questions(settings.benchmark, settings.annotations)
    groups = by_scene(questions)
    scenes = shard_scenes(list(groups), shard)
    (settings.out / 'scenes').mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    records = []
    if workers <= 1:
        backend = make_run_backend(settings)
        for scene_id in scenes:
            records.append(answer_scene(settings, scene_id, groups[scene_id], backend))
            logger.info('%s: %s', scene_id, records[-1]['status'])
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context('spawn')) as pool:
            jobs = [pool.submit(_scene_job, settings, scene_id, groups[scene_id]) for scene_id in scenes]
            records = [job.result() for job in jobs]
    mine = [q for scene_id in scenes for q in groups[scene_id]]
    summary = finish(settings.out, settings.benchmark, mine, settings.scans, records, judge)
    summary['seconds'] = round(time.perf_counter() - started, 2)
    summary['shard'] = list(shard)
    (settings.out / 'summary.json').write_text(json.dumps(summary, indent=1))
    return summary


def collect_predictions(out: Path) -> list[dict]:
    """Every prediction under ``out/scenes``."""
    predictions: list[dict] = []
    for answers in sorted((out / 'scenes').glob('*/answers.jsonl')):
        predictions.extend(read_answers(answers).values())
    return predictions


def finish(
    out: Path,
    benchmark: str,
    questions: list[Question],
    scans: Path | None,
    scene_records: list[dict] | None = None,
    judge: Any = None,
) -> dict[str, Any]:
    """predictions.json, scores.json and report.html of the predictions under ``out``; the run's summary."""
    predictions = collect_predictions(out)
    (out / 'predictions.json').write_text(json.dumps(predictions, indent=1))
    truth = read_ground_truth(scans, [q.scene_id for q in questions]) if benchmark in GROUNDING and scans else None
    marks_file = out / 'marks.jsonl'  # OpenEQA's judge marks, saved as they come: a rerun asks only the others
    marks = {str(r['question_id']): int(r['mark']) for r in read_answers(marks_file).values() if 'mark' in r}

    def save_mark(question_id: str, mark: int) -> None:
        with marks_file.open('a') as stream:
            stream.write(json.dumps({'question_id': question_id, 'mark': mark}) + '\n')

    scores = score(benchmark, questions, predictions, truth, judge=judge, marks=marks, on_mark=save_mark)
    (out / 'scores.json').write_text(json.dumps(scores, indent=1))
    write_report(out / 'report.html', benchmark, questions, predictions, scores, truth)
    records = scene_records or []
    return {
        'benchmark': benchmark,
        'scenes': len(records),
        'ok': [r['scene_id'] for r in records if r['status'] == 'ok'],
        'skipped': {r['scene_id']: r['reason'] for r in records if r['status'] == 'skipped'},
        'failed': {r['scene_id']: r['error'] for r in records if r['status'] == 'failed'},
        'scene_seconds': {r['scene_id']: r.get('seconds') for r in records if r['status'] == 'ok'},
        'scores': scores.get('scores', {}),
        'records': records,
    }


def merge_runs(
    out: Path, runs: list[Path], benchmark: str, annotations: Path, scans: Path | None, judge: Any = None
) -> dict[str, Any]:
    """Join the scene folders of shard runs into ``out`` and score them together."""
    (out / 'scenes').mkdir(parents=True, exist_ok=True)
    records = []
    for run in runs:
        if not (run / 'scenes').is_dir():
            raise ValueError(f'{run}: not a gpt4scene-eval run folder (no scenes/)')
        for scene in sorted((run / 'scenes').iterdir()):
            target = out / 'scenes' / scene.name
            if scene.resolve() != target.resolve():
                shutil.copytree(scene, target, dirs_exist_ok=True)
        summary_file = run / 'summary.json'
        if summary_file.exists():
            records.extend(json.loads(summary_file.read_text()).get('records', []))
    questions = read_questions(benchmark, annotations)
    summary = finish(out, benchmark, questions, scans, records, judge)
    (out / 'summary.json').write_text(json.dumps(summary, indent=1))
    return summary
