"""Object tags: how an instance ID is written for a VLM (``<OBJ017>``) and how IDs are read back from answers.

Writing and parsing live together so that they cannot drift apart: the BEV and
keyframe markers, the prompts, the reports and the grounding of answers all
use these two functions.
"""

from __future__ import annotations

import re

_OBJECT_TAG = re.compile(r'<OBJ(\d{1,4})>', re.IGNORECASE)
# A bare number, or "object 17" / "obj #17"; not part of a word, a decimal or a longer number.
# `\s*(?:#\s*)?`, not `\s*#?\s*`: two adjacent `\s*` backtrack quadratically on "obj" + a long run of spaces.
_PLAIN_NUMBER = re.compile(r'(?<![\w.])(?:obj(?:ect)?\s*(?:#\s*)?)?(\d{1,3})(?!\.\d|\w)', re.IGNORECASE)


def object_tag(object_id: int) -> str:
    """The ID as GPT4Scene and Chat-Scene write it: ``<OBJ017>``."""
    return f'<OBJ{int(object_id):03d}>'


def parse_object_ids(answer: str) -> list[int]:
    """Object IDs an answer names, in order, once each: ``<OBJ###>`` tags, or (only when there is none, as base
    models answer) plain numbers such as ``17`` or ``object 17``."""
    found = [int(m) for m in _OBJECT_TAG.findall(answer)]
    if not found:
        found = [int(m) for m in _PLAIN_NUMBER.findall(answer)]
    unique: list[int] = []
    for object_id in found:
        if object_id not in unique:
            unique.append(object_id)
    return unique
