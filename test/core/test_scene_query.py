"""Scene query validation and the `objects` task, without ROS."""

from __future__ import annotations

import pytest

from gpt4scene_ros.core.config import QueryConfig
from gpt4scene_ros.core.scene_query import ErrorCode, ObjectBox, QueryRequest, answer_query

OBJECTS = (ObjectBox(1, 'table', (0.0, 0.0, 0.4), (1.2, 0.8, 0.8)),
           ObjectBox(5, '', (1.0, 2.0, 0.8), (0.1, 0.1, 0.1)))
CONFIG = QueryConfig(max_question_chars=100)


def ask(**kwargs):
    return answer_query(QueryRequest(**{'question': '', 'task': 'objects', **kwargs}), CONFIG, OBJECTS)


def test_objects_lists_every_object_with_its_box():
    result = ask()
    assert result.success and result.objects == OBJECTS
    assert result.answer.splitlines() == ['2 objects:', '<1> table at (0.00, 0.00, 0.40) m',
                                          '<5> unknown at (1.00, 2.00, 0.80) m']


def test_objects_filtered_by_id():
    assert ask(object_ids=(5,)).objects == (OBJECTS[1],)


@pytest.mark.parametrize('kwargs, code, words', [
    ({'task': 'dance'}, ErrorCode.INVALID_REQUEST, 'unknown task'),
    ({'task': 'x' * 1000}, ErrorCode.INVALID_REQUEST, '...'),
    ({'question': 'q' * 101}, ErrorCode.INVALID_REQUEST, '101 characters'),
    ({'task': 'qa', 'question': '   '}, ErrorCode.INVALID_REQUEST, 'non-empty question'),
    ({'object_ids': (1, 2, 3)}, ErrorCode.INVALID_REQUEST, 'unknown object ids [2, 3]'),
    ({'object_ids': tuple(range(300))}, ErrorCode.INVALID_REQUEST, 'the limit is 256'),
    ({'num_frames': 33}, ErrorCode.INVALID_REQUEST, 'max_num_frames=32'),
    ({'task': 'caption'}, ErrorCode.INVALID_REQUEST, 'needs at least one id'),
    ({'task': 'caption', 'object_ids': (1,)}, ErrorCode.NOT_IMPLEMENTED, "task 'caption' is not available"),
    ({'task': 'multi_ground', 'question': 'all chairs'}, ErrorCode.NOT_IMPLEMENTED, 'not available'),
])
def test_refusals_carry_a_code_and_a_message(kwargs, code, words):
    result = ask(**kwargs)
    assert not result.success
    assert result.error_code == code
    assert words in result.message
    assert len(result.message) < 300
