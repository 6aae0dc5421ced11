"""Scene queries without ROS: request validation, the tasks, and answers grounded in the map's instances.

The query node converts a ``SceneQuery`` request into :class:`QueryRequest`,
calls :func:`answer_query` with the latest scene snapshot and the configured
VLM backend, and converts the :class:`QueryResult` back. Every failure is a
result with an :class:`ErrorCode` and a message, never an exception, so the
service always answers.
"""

from __future__ import annotations

import collections
import enum
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gpt4scene_ros.common.settings.query import QUERY_TASKS, QueryConfig
from gpt4scene_ros.objects.tags import object_tag
from gpt4scene_ros.query.backends.base import VlmBackend, VlmError
from gpt4scene_ros.query.grounding import ground_answer
from gpt4scene_ros.query.prompts import PromptError, PromptTemplates, build_prompt, task_text

if TYPE_CHECKING:
    from gpt4scene_ros.objects.scene_objects import ObjectsSnapshot
    from gpt4scene_ros.objects.tracking import Instance


class ErrorCode(enum.IntEnum):
    """Mirrors the ERROR_* constants of SceneQuery.srv."""

    NONE = 0
    INVALID_REQUEST = 1
    NOT_IMPLEMENTED = 2
    MAP_NOT_READY = 3
    MODEL = 4
    BUSY = 5


@dataclass(frozen=True)
class QueryRequest:
    question: str
    task: str
    object_ids: tuple = ()
    num_frames: int = 0
    return_images: bool = False
    situation: str = ''


@dataclass(frozen=True)
class QueryResult:
    error_code: ErrorCode
    message: str = ''
    answer: str = ''
    objects: tuple = field(default_factory=tuple)
    images: tuple = field(default_factory=tuple)
    prepare_ms: float = 0.0
    model_ms: float = 0.0
    input_tokens: int = 0
    image_tokens: int = 0

    @property
    def success(self) -> bool:
        return self.error_code == ErrorCode.NONE


def _failure(code: ErrorCode, message: str, **timing: Any) -> QueryResult:
    return QueryResult(error_code=code, message=message, **timing)


def _shown(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + '...'


def validate_request(request: QueryRequest, config: QueryConfig, known_ids: Collection[int]) -> QueryResult | None:
    """Return a failed result explaining what is wrong with ``request``, or None when it is valid."""
    if request.task not in QUERY_TASKS:
        return _failure(
            ErrorCode.INVALID_REQUEST, f'unknown task {_shown(request.task)!r}; expected one of {list(QUERY_TASKS)}'
        )
    for name in ('question', 'situation'):
        text = getattr(request, name)
        if len(text) > config.max_question_chars:
            return _failure(
                ErrorCode.INVALID_REQUEST,
                f'{name} has {len(text)} characters; the limit is {config.max_question_chars} '
                '(parameter max_question_chars)',
            )
    if request.task in ('qa', 'ground', 'multi_ground') and not request.question.strip():
        return _failure(ErrorCode.INVALID_REQUEST, f'task {request.task!r} needs a non-empty question')
    if request.num_frames > config.max_num_frames:
        return _failure(
            ErrorCode.INVALID_REQUEST, f'num_frames={request.num_frames} exceeds max_num_frames={config.max_num_frames}'
        )
    if len(request.object_ids) > config.max_object_ids:
        return _failure(
            ErrorCode.INVALID_REQUEST,
            f'{len(request.object_ids)} object ids given; the limit is {config.max_object_ids}',
        )
    if request.task == 'caption' and len(request.object_ids) != 1:
        return _failure(
            ErrorCode.INVALID_REQUEST,
            f"task 'caption' needs exactly one id in object_ids, got {len(request.object_ids)}",
        )
    unknown = sorted(set(request.object_ids) - set(known_ids))
    if unknown:
        shown = unknown[:10]
        more = f' (and {len(unknown) - 10} more)' if len(unknown) > 10 else ''
        return _failure(
            ErrorCode.INVALID_REQUEST, f'unknown object ids {shown}{more}; the map has {len(set(known_ids))} objects'
        )
    return None


def describe_objects(objects: Sequence[Instance]) -> str:
    """One line per object (:class:`gpt4scene_ros.objects.tracking.Instance`): ID, label, box centre and size."""
    if not objects:
        return 'No objects in the map yet.'
    lines = [f'{len(objects)} objects:']
    for obj in objects:
        center = ', '.join(f'{v:.2f}' for v in obj.box.center)
        size = ' x '.join(f'{v:.2f}' for v in obj.box.size)
        lines.append(f'{object_tag(obj.id)} {obj.label or "object"} at ({center}) m, {size} m')
    return '\n'.join(lines)


def answer_query(
    request: QueryRequest,
    config: QueryConfig,
    snapshot: ObjectsSnapshot | None = None,
    backend: VlmBackend | None = None,
    templates: PromptTemplates | None = None,
) -> QueryResult:
    """Answer ``request`` over ``snapshot`` (a :class:`gpt4scene_ros.objects.scene_objects.ObjectsSnapshot`, or
    None before any map exists) with ``backend`` (a :class:`gpt4scene_ros.query.backends.base.VlmBackend`, or
    None)."""
    started = time.perf_counter()
    objects = tuple(snapshot.instances) if snapshot is not None else ()
    invalid = validate_request(request, config, [obj.id for obj in objects])
    if invalid is not None:
        return invalid
    if request.task == 'objects':
        selected = objects
        if request.object_ids:
            wanted = set(request.object_ids)
            selected = tuple(obj for obj in objects if obj.id in wanted)
        return QueryResult(error_code=ErrorCode.NONE, answer=describe_objects(selected), objects=selected)
    if backend is None:
        return _failure(
            ErrorCode.NOT_IMPLEMENTED,
            f'task {request.task!r} needs a VLM: this node runs without one (parameter backend is none)',
        )
    if snapshot is None or not objects:
        return _failure(ErrorCode.MAP_NOT_READY, 'map is empty: no objects yet, nothing to ask about')
    assert templates is not None, 'a query with a backend needs the prompt templates'
    try:
        text = task_text(
            templates,
            request.task,
            request.question,
            request.situation,
            request.object_ids[0] if request.object_ids else None,
        )
        frames = request.num_frames or config.default_num_frames
        prompt = build_prompt(
            snapshot,
            text,
            frames,
            templates,
            longest_px=config.image_side_px,
            size_multiple=config.image_size_multiple or backend.image_size_multiple,
            zero_shot=config.zero_shot,
        )
    except PromptError as error:
        return _failure(ErrorCode.INVALID_REQUEST, str(error))
    built_ms = (time.perf_counter() - started) * 1000.0
    try:
        generation = backend.answer(prompt, config.query_timeout_s)
    except VlmError as error:
        return _failure(ErrorCode.MODEL, f'{backend.name} backend: {error}', prepare_ms=built_ms)
    timing: dict[str, Any] = dict(
        prepare_ms=built_ms + generation.prepare_ms,
        model_ms=generation.model_ms,
        input_tokens=generation.input_tokens,
        image_tokens=generation.image_tokens,
    )
    images = prompt.images if request.return_images else ()
    if not generation.text:
        return _failure(ErrorCode.MODEL, f'{backend.name} backend: the model returned nothing', **timing)
    grounding = ground_answer(generation.text, objects, single=request.task == 'ground')
    return QueryResult(ErrorCode.NONE, grounding.message, generation.text, grounding.objects, images, **timing)


class QueryRateLimit:
    """At most ``per_minute`` admitted queries in any 60 s (0: no limit); a sliding window of admit times."""

    WINDOW_S = 60.0

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._admitted: collections.deque[float] = collections.deque()

    def admit(self, now_s: float) -> bool:
        if self.per_minute <= 0:
            return True
        while self._admitted and now_s - self._admitted[0] >= self.WINDOW_S:
            self._admitted.popleft()
        if len(self._admitted) >= self.per_minute:
            return False
        self._admitted.append(now_s)
        return True
