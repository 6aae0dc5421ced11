"""The query node over real DDS: every request is answered, bad ones with success=false."""

from __future__ import annotations

import pytest
from conftest import call_service, wait_for
from geometry_msgs.msg import Point, Pose, Vector3

from gpt4scene_ros.msg import ObjectInstance, SceneSnapshot
from gpt4scene_ros.ros.qos import LATCHED
from gpt4scene_ros.srv import SceneQuery

Response = SceneQuery.Response


@pytest.fixture
def query(ros_node, start_node):
    """Start a query node; return a function sending one SceneQuery request."""
    start_node('query_node')
    client = ros_node.create_client(SceneQuery, 'query_node/scene_query')

    def ask(**fields):
        return call_service(ros_node, client, SceneQuery.Request(**fields))

    return ask


def publish_instances(node, instances, stamp_sec=42):
    """A scene snapshot with these instances, where the mapping node publishes it (latched)."""
    publisher = node.create_publisher(SceneSnapshot, 'mapping_node/scene_snapshot', LATCHED)
    msg = SceneSnapshot(instances=instances)
    msg.header.frame_id = 'map'
    msg.header.stamp.sec = stamp_sec
    publisher.publish(msg)
    return publisher


def instance(id_, label, x):
    pose = Pose(position=Point(x=x, y=0.5, z=0.75))
    pose.orientation.w = 1.0
    return ObjectInstance(
        id=id_,
        label=label,
        confidence=0.9,
        pose=pose,
        size=Vector3(x=0.1, y=0.1, z=0.12),
        num_points=300,
        keyframe_ids=[1, 4],
    )


def test_objects_on_an_empty_map(query):
    response = query(task='objects')
    assert response.success and response.error_code == Response.ERROR_NONE
    assert list(response.object_ids) == [] and list(response.instances) == []
    assert 'No objects' in response.answer


def test_objects_returns_the_published_instances_with_boxes(query, ros_node):
    publish_instances(ros_node, [instance(3, 'mug', 1.0), instance(7, 'chair', -2.0)])
    response = wait_for(lambda: (r := query(task='objects')).object_ids.tolist() and r, 15, 'instances at the node')
    assert response.success
    assert list(response.object_ids) == [3, 7]
    mug = response.instances[0]
    assert (mug.label, mug.pose.position.x, mug.size.z) == ('mug', 1.0, pytest.approx(0.12))
    assert list(mug.keyframe_ids) == [1, 4]
    assert response.map_stamp.sec == 42
    assert '<OBJ003> mug' in response.answer and '<OBJ007> chair' in response.answer

    only_chair = query(task='objects', object_ids=[7])
    assert only_chair.success and list(only_chair.object_ids) == [7]

    unknown = query(task='objects', object_ids=[7, 99])
    assert not unknown.success and unknown.error_code == Response.ERROR_INVALID_REQUEST
    assert '99' in unknown.message


@pytest.mark.parametrize(
    'fields, code, words',
    [
        ({'task': 'fly'}, Response.ERROR_INVALID_REQUEST, 'unknown task'),
        ({'task': ''}, Response.ERROR_INVALID_REQUEST, 'unknown task'),
        ({'task': 'qa', 'question': ''}, Response.ERROR_INVALID_REQUEST, 'non-empty question'),
        ({'task': 'qa', 'question': 'x' * 10_000_000}, Response.ERROR_INVALID_REQUEST, 'max_question_chars'),
        (
            {'task': 'qa', 'question': 'Where is the mug?', 'num_frames': 1000},
            Response.ERROR_INVALID_REQUEST,
            'num_frames',
        ),
        ({'task': 'caption', 'object_ids': [5]}, Response.ERROR_INVALID_REQUEST, 'unknown object ids'),
        ({'task': 'caption'}, Response.ERROR_INVALID_REQUEST, 'object_ids'),
        (
            {'task': 'qa', 'question': 'What is on the table?'},
            Response.ERROR_NOT_IMPLEMENTED,
            'parameter backend is none',
        ),
        ({'task': 'ground', 'question': 'the red chair'}, Response.ERROR_NOT_IMPLEMENTED, 'parameter backend is none'),
    ],
)
def test_bad_or_unbuilt_requests_fail_cleanly_and_the_node_keeps_serving(query, fields, code, words):
    response = query(**fields)
    assert not response.success
    assert response.error_code == code
    assert words in response.message
    assert query(task='objects').success
