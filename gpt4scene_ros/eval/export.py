"""Training samples in LLaMA-Factory's ShareGPT multimodal layout, made with the robot's own BEV and markers.

Each sample is ``{"messages": [{"role": "user", "content": "<image>...<image>TEXT"}, {"role": "assistant",
"content": ANSWER}], "images": [paths]}``, one ``<image>`` per image (the BEV, then the frames in time order);
``dataset_info.json`` registers the file (``formatting: sharegpt``, ``columns``: messages, images; ``tags``:
role/content, user/assistant). The default is what GPT4Scene's released model was trained on: the BEV plus 32
frames, longest side 512 px, markers on both; ``markers`` picks the paper's ablations (frames, bev, none).

Answers that name objects (grounding, the object a caption is about) use the map's IDs: each benchmark object is
matched to the instance whose box overlaps it most; a sample whose target matches nothing at IoU 0.25 is dropped
and counted. Images are written once per scene and shared by its samples.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gpt4scene_ros.eval.benchmarks import (
    GROUNDING_BENCHMARKS,
    TASK_OF,
    Question,
    by_scene,
    read_questions,
    scene_folder,
)
from gpt4scene_ros.eval.oracle import best_instances
from gpt4scene_ros.eval.run import RunSettings, map_scene, scene_key
from gpt4scene_ros.eval.scoring import GroundTruth, read_ground_truth
from gpt4scene_ros.objects.markers import fit_image
from gpt4scene_ros.objects.tags import object_tag
from gpt4scene_ros.query.prompts import PromptTemplates, first_ranked, task_text

logger = logging.getLogger(__name__)

MARKER_VARIANTS = ('both', 'frames', 'bev', 'none')
MATCH_MIN_IOU = 0.25


@dataclass
class ExportSummary:
    samples: int = 0
    dropped_no_match: int = 0
    skipped_scenes: dict[str, str] = field(default_factory=dict)
    failed_scenes: dict[str, str] = field(default_factory=dict)
    images_per_sample: int = 0


def scene_images(snapshot: Any, frames: int, markers: str, size: int) -> list[np.ndarray]:
    """The BEV and the ``frames`` first-ranked keyframes (time order), fitted to ``size``, marked per ``markers``."""
    images = []
    for keyframe in [None, *first_ranked(snapshot.keyframes, frames)]:
        bev = keyframe is None
        if markers == 'both' or (markers == 'bev' and bev) or (markers == 'frames' and not bev):
            images.append(snapshot.marked(keyframe, size))
            continue
        source = snapshot.bev.image if keyframe is None else keyframe.image
        fitted, _, _ = fit_image(source, size)
        images.append(fitted)
    return images


def _answer(benchmark: str, question: Question, snapshot: Any, truth: GroundTruth | None) -> tuple[str, int | None]:
    """(the assistant's answer, the map object a caption is about); ('', None) when a target matches nothing."""
    if benchmark not in GROUNDING_BENCHMARKS:
        return (question.answers[0] if question.answers else ''), None
    assert truth is not None
    if any((question.scene_id, i) not in truth.boxes for i in question.object_ids):
        return '', None
    targets = [truth.boxes[(question.scene_id, i)] for i in question.object_ids]
    found = [best_instances(snapshot.instances, [t], MATCH_MIN_IOU) for t in targets]
    if any(not f for f in found):
        return '', None
    if benchmark == 'scan2cap':
        return (question.answers[0] if question.answers else ''), found[0][0].id
    return ' '.join(object_tag(f[0].id) for f in found), None


def export_benchmark(
    settings: RunSettings, frames: int = 32, markers: str = 'both', size: int = 512
) -> tuple[ExportSummary, Path]:
    """Samples of every question of ``settings``'s benchmark into ``settings.out``; the summary and the dataset
    file."""
    if markers not in MARKER_VARIANTS:
        raise ValueError(f'--markers {markers!r}: expected one of {list(MARKER_VARIANTS)}')
    if not 0 <= frames <= 32 or size < 32:
        raise ValueError(f'--frames must be 0-32 (the keyframes a snapshot holds), --size >= 32: {frames}, {size}')
    questions = read_questions(settings.benchmark, settings.annotations)
    templates = PromptTemplates.from_yaml(settings.templates_file)
    out = settings.out
    out.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary()
    samples = []
    for scene_id, scene_questions in by_scene(questions).items():
        folder = scene_folder(settings.scans, scene_id)
        if folder is None:
            summary.skipped_scenes[scene_id] = f'no folder under {settings.scans}'
            continue
        try:
            snapshot, _ = map_scene(folder, out / 'maps' / scene_key(scene_id), settings)
        except Exception as error:  # one scene failing is reported, the others exported
            logger.exception('%s failed', scene_id)
            summary.failed_scenes[scene_id] = f'{type(error).__name__}: {error}'
            continue
        truth = read_ground_truth(settings.scans, [scene_id]) if settings.benchmark in GROUNDING_BENCHMARKS else None
        paths = []
        for k, image in enumerate(scene_images(snapshot, frames, markers, size)):
            name = f'images/{scene_key(scene_id)}/{"bev" if k == 0 else f"frame_{k:02d}"}.png'
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / name), cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
            paths.append(name)
        summary.images_per_sample = max(summary.images_per_sample, len(paths))
        for question in scene_questions:
            answer, object_id = _answer(settings.benchmark, question, snapshot, truth)
            if not answer:
                summary.dropped_no_match += 1
                continue
            text = task_text(templates, TASK_OF[settings.benchmark], question.question, question.situation, object_id)
            samples.append(
                {
                    'messages': [
                        {'role': 'user', 'content': '<image>' * len(paths) + text},
                        {'role': 'assistant', 'content': answer},
                    ],
                    'images': list(paths),
                }
            )
    summary.samples = len(samples)
    name = f'gpt4scene_{settings.benchmark}'
    dataset = out / f'{name}.json'
    dataset.write_text(json.dumps(samples, indent=1))
    info_file = out / 'dataset_info.json'
    info = json.loads(info_file.read_text()) if info_file.exists() else {}
    info[name] = {
        'file_name': dataset.name,
        'formatting': 'sharegpt',
        'columns': {'messages': 'messages', 'images': 'images'},
        'tags': {'role_tag': 'role', 'content_tag': 'content', 'user_tag': 'user', 'assistant_tag': 'assistant'},
    }
    info_file.write_text(json.dumps(info, indent=1))
    return summary, dataset
