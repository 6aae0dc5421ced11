"""Grounding: the objects an answer names, resolved to the map's instances (and their 3D boxes)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gpt4scene_ros.objects.tags import object_tag, parse_object_ids

if TYPE_CHECKING:
    from gpt4scene_ros.objects.tracking import Instance


@dataclass(frozen=True)
class Grounding:
    """The instances an answer names (in the order named, once each) and a note on the IDs not in the map."""

    objects: tuple
    message: str = ''


def ground_answer(answer: str, instances: Iterable[Instance], single: bool = False) -> Grounding:
    """Resolve the object tags (or, failing those, plain IDs) of ``answer`` to ``instances``
    (:class:`~gpt4scene_ros.objects.tracking.Instance`); ``single`` keeps only the first one named (the
    ``ground`` task)."""
    by_id = {instance.id: instance for instance in instances}
    named = parse_object_ids(answer)
    if single:
        named = named[:1]
    known = [object_id for object_id in named if object_id in by_id]
    unknown = [object_id for object_id in named if object_id not in by_id]
    message = ''
    if unknown:
        message = (
            f'the answer names objects that are not in the map: {[object_tag(i) for i in unknown[:10]]} (left out)'
        )
    return Grounding(tuple(by_id[i] for i in known), message)
