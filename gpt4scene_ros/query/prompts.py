"""GPT4Scene visual prompts: the marked bird's-eye view and keyframes, then the task's text, and answers parsed back
into object IDs.

Conventions of the authors' checkpoints (and Chat-Scene's data): images first
(the BEV, then N keyframes in time order), each resized so that its longest side
is at most 512 px with the markers redrawn at that size; object IDs written
``<OBJ###>``; task templates from ``config/prompts.yaml``. The request's text
fills the template's placeholders once and is never parsed as a template.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from gpt4scene_ros.objects.tags import object_tag

if TYPE_CHECKING:
    from gpt4scene_ros.objects.scene_objects import ObjectsSnapshot

TEMPLATE_KEYS = ('qa', 'sqa', 'ground', 'multi_ground', 'caption', 'zero_shot_instruction')
_PLACEHOLDERS = {'question', 'situation', 'description', 'object'}
_PLACEHOLDER = re.compile(r'\{([a-z_]+)\}')


def default_templates_file() -> Path:
    """The package's ``config/prompts.yaml``: in the share folder of its install prefix (colcon, a ROS
    distribution: ``<prefix>/lib/pythonX.Y/site-packages/gpt4scene_ros`` beside ``<prefix>/share/gpt4scene_ros``),
    else in this source tree."""
    package = Path(__file__).resolve().parents[1]
    if len(package.parents) > 3:
        installed = package.parents[3] / 'share' / 'gpt4scene_ros' / 'config' / 'prompts.yaml'
        if installed.is_file():
            return installed
    return package.parent / 'config' / 'prompts.yaml'


class PromptError(ValueError):
    """A template file or a request cannot make a prompt (the message says what to fix)."""


@dataclass(frozen=True)
class PromptTemplates:
    qa: str
    sqa: str
    ground: str
    multi_ground: str
    caption: str
    zero_shot_instruction: str

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> PromptTemplates:
        """Templates from a YAML file with the keys of :data:`TEMPLATE_KEYS`; PromptError naming what is wrong."""
        path = Path(path)
        try:
            record = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as error:
            raise PromptError(f'prompt templates {path}: {error}') from None
        if not isinstance(record, dict):
            raise PromptError(f'prompt templates {path}: expected a mapping of {list(TEMPLATE_KEYS)}')
        missing = [key for key in TEMPLATE_KEYS if not isinstance(record.get(key), str) or not record[key].strip()]
        if missing:
            raise PromptError(f'prompt templates {path}: missing or empty {missing}')
        for key in TEMPLATE_KEYS:
            unknown = set(_PLACEHOLDER.findall(record[key])) - _PLACEHOLDERS
            if unknown:
                raise PromptError(
                    f'prompt templates {path}: {key} uses unknown placeholders {sorted(unknown)}; '
                    f'known: {sorted(_PLACEHOLDERS)}'
                )
        return cls(**{key: record[key].strip() for key in TEMPLATE_KEYS})


def fill(template: str, values: dict) -> str:
    """Replace each ``{name}`` of ``template`` by ``values[name]`` in one pass: the values are data, so braces
    or placeholder names inside them stay as they are."""
    pieces, position = [], 0
    for match in _PLACEHOLDER.finditer(template):
        pieces.append(template[position : match.start()])
        pieces.append(str(values.get(match.group(1), match.group(0))))
        position = match.end()
    pieces.append(template[position:])
    return ''.join(pieces)


def task_text(
    templates: PromptTemplates, task: str, question: str = '', situation: str = '', object_id: int | None = None
) -> str:
    """The user text of a task: ``qa`` (``sqa`` when a situation is given), ``ground``, ``multi_ground``,
    ``caption`` (of ``object_id``)."""
    question = question.strip()
    if task == 'qa':
        if situation.strip():
            return fill(templates.sqa, {'situation': situation.strip(), 'question': question})
        return fill(templates.qa, {'question': question})
    if task in ('ground', 'multi_ground'):
        return fill(getattr(templates, task), {'description': question.rstrip('.?! ')})
    if task == 'caption':
        if object_id is None:
            raise PromptError('caption needs the id of the object to describe')
        return fill(templates.caption, {'object': object_tag(object_id)})
    raise PromptError(f'no prompt for task {task!r}')


@dataclass(frozen=True, eq=False)
class Prompt:
    """What a VLM backend is given: RGB images (in order), the user text, an optional system message."""

    images: tuple
    text: str
    system: str = ''
    keyframe_indices: tuple = field(default=())
    """Frame numbers of the keyframes among the images (after the BEV)."""

    def messages(self, image_part: Callable[[int, np.ndarray], dict]) -> list[dict]:
        """Chat messages, images first then the text; ``image_part(k, image)`` gives each image's content part."""
        content = [image_part(k, image) for k, image in enumerate(self.images)]
        content.append({'type': 'text', 'text': self.text})
        messages = [{'role': 'system', 'content': self.system}] if self.system else []
        return messages + [{'role': 'user', 'content': content}]


def build_prompt(
    snapshot: ObjectsSnapshot,
    text: str,
    num_frames: int,
    templates: PromptTemplates,
    *,
    longest_px: int = 512,
    size_multiple: int = 1,
    zero_shot: bool = False,
) -> Prompt:
    """The marked BEV, then the ``num_frames`` first-ranked of the snapshot's keyframes in time order, each fitted
    to ``longest_px`` (sides a multiple of ``size_multiple``) with its markers redrawn at that size, and ``text``.
    The marked images come from the snapshot's cache: drawn once per snapshot and size, whatever the queries."""
    keyframes = first_ranked(snapshot.keyframes, num_frames)
    images = [snapshot.marked(keyframe, longest_px, size_multiple) for keyframe in [None, *keyframes]]
    return Prompt(
        tuple(images), text, templates.zero_shot_instruction if zero_shot else '', tuple(k.index for k in keyframes)
    )


def first_ranked(keyframes: Sequence, count: int) -> list:
    """The ``count`` keyframes of lowest rank (the selection's first choices), in time order."""
    if count <= 0:
        return []
    chosen = sorted(range(len(keyframes)), key=lambda k: (keyframes[k].rank, k))[:count]
    return [keyframes[k] for k in sorted(chosen)]
