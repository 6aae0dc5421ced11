"""Scene queries without ROS: request validation and the tasks built so far.

The query node converts a ``SceneQuery`` request into :class:`QueryRequest`,
calls :func:`answer_query` and converts the :class:`QueryResult` back. Every
failure is a result with an :class:`ErrorCode` and a message, never an
exception, so the service always answers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .config import QUERY_TASKS, QueryConfig


class ErrorCode(enum.IntEnum):
    """Mirrors the ERROR_* constants of SceneQuery.srv."""

    NONE = 0
    INVALID_REQUEST = 1
    NOT_IMPLEMENTED = 2
    MAP_NOT_READY = 3
    MODEL = 4


@dataclass(frozen=True)
class ObjectBox:
    """An object instance with its axis-aligned box in the map frame."""

    id: int
    label: str
    center_m: tuple
    size_m: tuple
    confidence: float = 1.0
    num_points: int = 0


@dataclass(frozen=True)
class QueryRequest:
    question: str
    task: str
    object_ids: tuple = ()
    num_frames: int = 0
    return_images: bool = False


@dataclass(frozen=True)
class QueryResult:
    error_code: ErrorCode
    message: str = ''
    answer: str = ''
    objects: tuple = field(default_factory=tuple)
    images: tuple = field(default_factory=tuple)

    @property
    def success(self) -> bool:
        return self.error_code == ErrorCode.NONE


def _failure(code: ErrorCode, message: str) -> QueryResult:
    return QueryResult(error_code=code, message=message)


def validate_request(request: QueryRequest, config: QueryConfig, known_ids) -> QueryResult | None:
    """Return a failed result explaining what is wrong with ``request``, or None when it is valid."""
    if request.task not in QUERY_TASKS:
        shown = request.task if len(request.task) <= 40 else request.task[:40] + '...'
        return _failure(ErrorCode.INVALID_REQUEST, f'unknown task {shown!r}; expected one of {list(QUERY_TASKS)}')
    if len(request.question) > config.max_question_chars:
        return _failure(ErrorCode.INVALID_REQUEST,
                        f'question has {len(request.question)} characters; the limit is '
                        f'{config.max_question_chars} (parameter max_question_chars)')
    if request.task in ('qa', 'ground', 'multi_ground') and not request.question.strip():
        return _failure(ErrorCode.INVALID_REQUEST, f'task {request.task!r} needs a non-empty question')
    if request.num_frames > config.max_num_frames:
        return _failure(ErrorCode.INVALID_REQUEST,
                        f'num_frames={request.num_frames} exceeds max_num_frames={config.max_num_frames}')
    if len(request.object_ids) > config.max_object_ids:
        return _failure(ErrorCode.INVALID_REQUEST,
                        f'{len(request.object_ids)} object ids given; the limit is {config.max_object_ids}')
    if request.task == 'caption' and not request.object_ids:
        return _failure(ErrorCode.INVALID_REQUEST, "task 'caption' needs at least one id in object_ids")
    unknown = sorted(set(request.object_ids) - set(known_ids))
    if unknown:
        shown = unknown[:10]
        more = f' (and {len(unknown) - 10} more)' if len(unknown) > 10 else ''
        return _failure(ErrorCode.INVALID_REQUEST,
                        f'unknown object ids {shown}{more}; the map has {len(set(known_ids))} objects')
    return None


def describe_objects(objects) -> str:
    """One line per object: id, label and box centre, for the `objects` task's answer."""
    if not objects:
        return 'No objects in the map yet.'
    lines = [f'{len(objects)} objects:']
    for obj in objects:
        center = ', '.join(f'{v:.2f}' for v in obj.center_m)
        lines.append(f'<{obj.id}> {obj.label or "unknown"} at ({center}) m')
    return '\n'.join(lines)


def answer_query(request: QueryRequest, config: QueryConfig, objects) -> QueryResult:
    """Answer ``request`` over the current object list."""
    objects = tuple(objects)
    invalid = validate_request(request, config, [obj.id for obj in objects])
    if invalid is not None:
        return invalid
    if request.task != 'objects':
        return _failure(ErrorCode.NOT_IMPLEMENTED,
                        f"task {request.task!r} is not available yet: this version answers only task 'objects'")
    selected = objects
    if request.object_ids:
        wanted = set(request.object_ids)
        selected = tuple(obj for obj in objects if obj.id in wanted)
    return QueryResult(error_code=ErrorCode.NONE, answer=describe_objects(selected), objects=selected)
