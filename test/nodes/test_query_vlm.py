"""The query node with real VLM backends over DDS: the tiny random Qwen2-VL through transformers, and through the
OpenAI-compatible HTTP backend against a real HTTP server; start-up errors, busy and failing models."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT, call_service, executable, wait_for

from gpt4scene_ros.ros.qos import LATCHED

sys.path.insert(0, str(REPO_ROOT / 'test'))
sys.path.insert(0, str(REPO_ROOT / 'test' / 'core'))
from chat_server import ChatServer  # noqa: E402
from scene_fixtures import make_snapshot  # noqa: E402
from test_mapping_node import MapOutputs  # noqa: E402

from gpt4scene_ros.io.messages import image_array  # noqa: E402
from gpt4scene_ros.msg import SceneSnapshot  # noqa: E402
from gpt4scene_ros.query.backends.local_transformers import TransformersBackend  # noqa: E402
from gpt4scene_ros.ros.conversions.scene import snapshot_to_msg  # noqa: E402
from gpt4scene_ros.sim.scene import SyntheticSceneConfig  # noqa: E402
from gpt4scene_ros.sim.writer import write_sequence  # noqa: E402
from gpt4scene_ros.srv import SceneQuery  # noqa: E402

Response = SceneQuery.Response
TASKS = [
    dict(task='qa', question='How many chairs are there?'),
    dict(task='qa', question='What is in front of me?', situation='I am sitting at the table.'),
    dict(task='ground', question='the mug'),
    dict(task='multi_ground', question='all tables'),
    dict(task='caption', object_ids=[7]),
]


def publish_snapshot(node):
    publisher = node.create_publisher(SceneSnapshot, 'mapping_node/scene_snapshot', LATCHED)
    publisher.publish(snapshot_to_msg(make_snapshot(num_keyframes=10), 'odom'))
    return publisher


def asker(ros_node):
    client = ros_node.create_client(SceneQuery, 'query_node/scene_query')

    def ask(timeout_s=60.0, **fields):
        return call_service(ros_node, client, SceneQuery.Request(**fields), timeout_s=timeout_s, attempt_s=30.0)

    return ask


def ready(ask):
    """Wait until the node has the snapshot (task=objects lists its instances)."""
    wait_for(lambda: list(ask(task='objects').object_ids) == [3, 7, 12], 60, 'the snapshot at the query node')


def check_answers(ask):
    for fields in TASKS:
        response = ask(return_images=True, num_frames=4, **fields)
        assert response.success, (fields, response.message)
        assert response.answer and response.error_code == Response.ERROR_NONE
        assert len(response.images) == 5 and all(max(i.width, i.height) <= 512 for i in response.images)
        assert image_array(response.images[0]).shape[2] == 3
        assert response.prepare_ms > 0 and response.model_ms > 0
        assert set(response.object_ids) <= {3, 7, 12} and len(response.instances) == len(response.object_ids)
        assert response.map_stamp.sec == 10


def tiny_query_node(tiny_models, ros_node, start_node, **params):
    """A published snapshot and a query node running the tiny Qwen2-VL, ready to answer: (node, ask, publisher);
    keep the publisher alive (the snapshot is latched)."""
    publisher = publish_snapshot(ros_node)
    node = start_node(
        'query_node', {'backend': 'transformers', 'model': str(tiny_models / 'qwen2-vl'), 'device': 'cpu', **params}
    )
    ask = asker(ros_node)
    ready(ask)
    return node, ask, publisher


def test_every_task_through_the_transformers_backend(tiny_models, ros_node, start_node):
    _, ask, publisher = tiny_query_node(tiny_models, ros_node, start_node, max_new_tokens=16)  # noqa: F841
    check_answers(ask)
    assert ask(task='qa', question='Where?', num_frames=0).image_tokens > 0
    assert len(ask(task='qa', question='Where?', num_frames=2).images) == 0, 'images only when asked for'


def test_more_queries_than_max_pending_are_refused_and_the_node_keeps_serving(tiny_models, ros_node, start_node):
    _, ask, publisher = tiny_query_node(
        tiny_models,
        ros_node,
        start_node,
        max_new_tokens=128,  # noqa: F841
        max_pending=1,
    )
    client = ros_node.create_client(SceneQuery, 'query_node/scene_query')
    futures = [
        client.call_async(SceneQuery.Request(task='qa', question='Describe the room.', num_frames=32)) for _ in range(4)
    ]
    wait_for(lambda: all(f.done() for f in futures), 120, 'answers to four concurrent queries')
    responses = [f.result() for f in futures]
    assert sum(r.success for r in responses) >= 1
    busy = [r for r in responses if not r.success]
    assert busy and all('max_pending' in r.message and r.error_code == Response.ERROR_BUSY for r in busy)
    assert ask(task='qa', question='Still there?').success


def test_queries_over_the_rate_limit_are_refused_at_once(tiny_models, ros_node, start_node):
    _, ask, publisher = tiny_query_node(
        tiny_models,
        ros_node,
        start_node,
        max_new_tokens=4,  # noqa: F841
        max_queries_per_minute=3,
    )
    assert all(ask(task='qa', question=f'Question {i}?').success for i in range(3))
    started = time.monotonic()
    limited = ask(task='qa', question='One too many?')
    assert not limited.success and limited.error_code == Response.ERROR_BUSY
    assert 'max_queries_per_minute' in limited.message and time.monotonic() - started < 5
    assert ask(task='objects').success, 'task=objects is not rate limited'


def test_every_task_through_the_http_backend_and_a_failing_server(tiny_models, ros_node, start_node, monkeypatch):
    server = ChatServer(
        TransformersBackend(str(tiny_models / 'qwen2-vl'), device='cpu', max_new_tokens=16), api_key='key-for-the-test'
    )
    try:
        monkeypatch.setenv('GPT4SCENE_TEST_API_KEY', 'key-for-the-test')
        publisher = publish_snapshot(ros_node)  # noqa: F841
        params = {
            'backend': 'openai',
            'base_url': server.base_url,
            'model': 'tiny',
            'api_key_env': 'GPT4SCENE_TEST_API_KEY',
            'request_timeout_s': 2.0,
            'retries': 1,
            'query_timeout_s': 20.0,
        }
        node = start_node('query_node', params)
        plain_ask, responses = asker(ros_node), []

        def ask(**fields):  # every response is kept, to search it for the key at the end
            response = plain_ask(**fields)
            responses.append(response)
            return response

        ready(ask)
        check_answers(ask)
        server.mode = 'error500'
        failed = ask(task='qa', question='Where is the mug?')
        assert not failed.success and failed.error_code == Response.ERROR_MODEL and 'HTTP 500' in failed.message
        server.mode = 'nonjson'
        assert 'not a chat completion' in ask(task='ground', question='the mug').message
        server.mode = 'slow'
        slow = ask(task='qa', question='Where is the mug?')
        assert not slow.success and ('timed out' in slow.message or 'no answer' in slow.message)
        server.mode = 'ok'
        assert ask(task='qa', question='Where is the mug?').success
        server.close()
        started = time.monotonic()
        down = ask(task='qa', question='Where is the mug?')
        assert not down.success and down.error_code == Response.ERROR_MODEL and time.monotonic() - started < 20
        assert 'key-for-the-test' not in node.output, 'the API key is never logged'
        assert len(responses) >= 10
        for response in responses:
            assert 'key-for-the-test' not in f'{response.message} {response.answer}', 'nor in a response'
    finally:
        try:
            server.close()
        except Exception:
            pass


@pytest.mark.parametrize(
    'params, words',
    [
        ({'backend': 'transformers', 'model': '/no/such/model'}, "parameter model='/no/such/model'"),
        ({'backend': 'transformers'}, 'parameter model is empty'),
        (
            {
                'backend': 'openai',
                'base_url': 'http://127.0.0.1:9/v1',
                'model': 'm',
                'api_key_env': 'GPT4SCENE_UNSET_KEY',
            },
            "api_key_env='GPT4SCENE_UNSET_KEY'",
        ),
        ({'prompt_templates_file': '/no/such/prompts.yaml'}, 'prompt_templates_file'),
    ],
)
def test_a_missing_model_or_key_stops_the_node_at_start_up(params, words, tmp_path):
    import subprocess

    args = [executable('query_node'), '--ros-args']
    for key, value in params.items():
        args += ['-p', f'{key}:={value}']
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert words in result.stdout + result.stderr


def test_prompt_templates_file_is_installed():
    from ament_index_python.packages import get_package_share_directory

    assert (Path(get_package_share_directory('gpt4scene_ros')) / 'config' / 'prompts.yaml').is_file()


@pytest.fixture(scope='module')
def looped_scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp('query_mapping') / 'scene'
    write_sequence(SyntheticSceneConfig(seed=4, num_frames=60, clutter='none').with_resolution(320, 240), folder)
    return folder


@pytest.mark.timing
def test_the_map_keeps_integrating_while_queries_run(looped_scene, tiny_models, ros_node, start_node):
    """The model runs in the query node's worker, never in a mapping callback: with best-effort input and the
    default frame queue (frames that arrive while the node is blocked are lost, not caught up later), the map
    keeps integrating while queries run back to back (a model in a mapping callback would stop it for most of
    the window). Loose bounds: with instance updates every second, 8 s windows of the same kind differ by up
    to a third on this 2-core machine, and the diagnostics that carry the counter can arrive ~2 s late; the
    numbers are in bench/query.py."""
    outputs = MapOutputs(ros_node)
    start_node('mapping_node', {'diagnostics_period_s': 0.2, 'instance_period_s': 1.0})
    start_node(
        'query_node',
        {'backend': 'transformers', 'model': str(tiny_models / 'qwen2-vl'), 'device': 'cpu', 'max_new_tokens': 128},
    )
    start_node('player', {'data_dir': str(looped_scene), 'loop': True, 'rate_hz': 15.0, 'wait_for_subscribers': 1})
    ask = asker(ros_node)
    wait_for(
        lambda: len(ask(task='objects').object_ids) >= 1, 120, 'instances at the query node', details=outputs.counters
    )

    def integrated_per_second(seconds, work):
        before, started = outputs.counter('frames_integrated'), time.monotonic()
        while time.monotonic() - started < seconds:
            work()
        return (outputs.counter('frames_integrated') - before) / (time.monotonic() - started)

    answered = []

    def query():
        response = ask(task='qa', question='What is on the table?', num_frames=8)
        assert response.success, response.message
        answered.append(response.model_ms)

    idle = integrated_per_second(8.0, lambda: time.sleep(0.1))
    busy = integrated_per_second(8.0, query)
    # Rates vary with the machine's load (2.5 to 6 frames/s idle here): the bounds only tell a map that keeps
    # integrating from one that stops while the model runs.
    assert idle > 1.0, f'the mapping node integrated {idle:.1f} frames/s without queries'
    assert len(answered) >= 3, f'only {len(answered)} queries answered in 8 s'
    assert busy >= 0.25 * idle, f'{busy:.1f} frames/s while queries run, {idle:.1f} without'
