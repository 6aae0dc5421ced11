"""Clean stops: every node exits on SIGTERM and on Ctrl-C (SIGINT) with exit code 0 and no traceback, the
mapping node's object-layer process with it; integer values are taken for floating-point parameters."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from conftest import child_pids, wait_for

from gpt4scene_ros.sim.scene import SyntheticSceneConfig
from gpt4scene_ros.sim.writer import write_sequence


@pytest.fixture(scope='module')
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp('signals') / 'scene'
    write_sequence(SyntheticSceneConfig(seed=3, num_frames=30, clutter='none').with_resolution(160, 120), folder)
    return folder


def stop_with(node, signum) -> int:
    node.process.send_signal(signum)
    try:
        return node.process.wait(timeout=20)
    except Exception:
        node.process.kill()
        raise


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
def test_player_and_mapping_node_stop_cleanly_while_data_flows(signum, scene, start_node):
    mapping = start_node('mapping_node', {'instances_enabled': True, 'instance_period_s': 1})
    # rate_hz:=30 is an integer on the command line: accepted for the floating-point parameter.
    player = start_node(
        'player',
        {'data_dir': str(scene), 'playback_mode': 'realtime', 'loop': True, 'rate_hz': 30, 'wait_for_subscribers': 1},
    )
    wait_for(
        lambda: child_pids(mapping.process.pid), 60, 'the object-layer process', details=lambda: mapping.output[-1500:]
    )
    worker = child_pids(mapping.process.pid)[0]
    time.sleep(3.0)  # frames are flowing and being integrated
    assert player.process.poll() is None, player.output
    for node in (player, mapping):
        code = stop_with(node, signum)
        assert code == 0, f'exit code {code}:\n{node.output[-3000:]}'
        assert 'Traceback' not in node.output and 'RCLError' not in node.output, node.output[-3000:]

    def worker_gone():  # it may finish the step it is in (a C call holding its GIL) before it sees the pipe close
        try:
            return 'State:\tZ' in Path(f'/proc/{worker}/status').read_text()
        except FileNotFoundError:
            return True

    wait_for(worker_gone, 10, 'the object-layer process to exit after the mapping node')


def test_query_node_stops_cleanly_on_sigterm(tiny_models, start_node):
    query = start_node(
        'query_node',
        {'backend': 'transformers', 'model': str(tiny_models / 'qwen2-vl'), 'device': 'cpu', 'max_new_tokens': 4},
    )
    wait_for(
        lambda: 'serving' in query.output or query.process.poll() is not None,
        120,
        'the query node to load its model',
        details=lambda: query.output[-1500:],
    )
    assert query.process.poll() is None, query.output
    code = stop_with(query, signal.SIGTERM)
    assert code == 0 and 'Traceback' not in query.output, query.output[-3000:]


def test_a_non_number_for_a_floating_point_parameter_is_refused_by_name(scene, start_node):
    player = start_node('player', {'data_dir': str(scene), 'rate_hz': 'fast'})
    assert player.wait(30) == 2
    assert 'rate_hz' in player.output and 'Traceback' not in player.output, player.output
