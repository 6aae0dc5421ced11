"""The object layer in a child process (gpt4scene_ros.objects.process): the same instances as in this
process, a child that dies or hangs is reported and replaced with the ID counter continued, a broken detector
stops the start with its parameter named, and a child never outlives its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import fused_room

from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.common.settings.mapping import MappingConfig
from gpt4scene_ros.objects.evaluation import load_truth, match_instances
from gpt4scene_ros.objects.process import ObjectsProcess, ObjectsWorkerError

MAPPING = MappingConfig(device='CPU:0', initial_block_count=2000)
CONFIG = InstanceConfig(num_keyframes=6)


@pytest.fixture(scope='module')
def room(tmp_path_factory):
    folder = tmp_path_factory.mktemp('objects_process') / 'room'
    return fused_room(folder, 21, 90, MAPPING)


@pytest.fixture
def worker():
    process = ObjectsProcess(CONFIG, MAPPING, timeout_s=20.0)
    yield process
    process.close()


def offer_all(objects, room):
    _, sequence, _, frames = room
    kept = [
        objects.observe(f.color, f.depth_m, sequence.intrinsics, f.T_world_camera, f.timestamp_s, f.index)
        for f in frames
    ]
    return sum(kept)


def update_until_settled(objects, scene_map, first_version=1):
    snapshot = None
    for version in range(first_version, first_version + 20):
        snapshot = objects.update(*scene_map.surface(), float(version), version)
        if not objects.has_new_candidates():
            break
        time.sleep(0.05)  # candidates still on their way to the child
    return snapshot


def test_the_child_finds_the_rooms_objects_and_keyframes(room, worker):
    folder, _, scene_map, _ = room
    assert offer_all(worker, room) >= 6 and worker.has_new_candidates()
    snapshot = update_until_settled(worker, scene_map)
    assert not worker.has_new_candidates()
    matching = match_instances(snapshot.instances, load_truth(folder / 'instances.json'))
    assert matching.recall(0.25) >= 0.8, f'recall {matching.recall(0.25):.2f}'
    ids = [i.id for i in snapshot.instances]
    assert len(set(ids)) == len(ids) and len(snapshot.keyframes) == CONFIG.num_keyframes
    assert snapshot.segmentation is None, 'the per-voxel arrays stay in the child'
    assert snapshot.bev_marked().shape == snapshot.bev.image.shape

    state, arrays = worker.state()
    # Every published instance is a track; a track missing from the last update stays (unpublished) a while.
    tracks = {t['id'] for t in state['tracks']}
    assert set(ids) <= tracks and set(arrays) == {'vote_keys', 'vote_seen', 'vote_boundary'}
    worker.reset()
    empty = worker.update(*scene_map.surface(), 50.0, 50)
    assert all(i.id > max(ids) for i in empty.instances), 'IDs are not reused after a reset'
    assert worker.restore(state, arrays) == len(tracks)
    again = worker.update(*scene_map.surface(), 51.0, 51)
    assert {i.id for i in again.instances} & set(ids), 'the restored instances keep their IDs'
    with pytest.raises(ValueError, match='tracker state'):
        worker.restore({'version': -1}, None)


def test_a_killed_child_is_reported_and_replaced_with_ids_continued(room, worker):
    _, _, scene_map, _ = room
    offer_all(worker, room)
    first = update_until_settled(worker, scene_map)
    old_ids = {i.id for i in first.instances}
    os.kill(worker.pid, signal.SIGKILL)
    with pytest.raises(ObjectsWorkerError, match='gone|died'):
        worker.update(*scene_map.surface(), 30.0, 30)
    with pytest.raises(ObjectsWorkerError, match='not running'):
        worker.state()
    worker.restart()
    assert worker.counts['restarts'] == 1
    offer_all(worker, room)
    second = update_until_settled(worker, scene_map, 31)
    assert second.instances and min(i.id for i in second.instances) > max(old_ids)


def test_a_hung_child_times_out_and_observe_never_blocks(room):
    _, sequence, scene_map, frames = room
    objects = ObjectsProcess(CONFIG, MAPPING, timeout_s=2.0)
    try:
        os.kill(objects.pid, signal.SIGSTOP)
        started = time.monotonic()
        for step in range(4):  # many more candidates than the pipe holds
            for f in frames[::3]:
                objects.observe(
                    f.color, f.depth_m, sequence.intrinsics, f.T_world_camera, f.timestamp_s + 100 * step, f.index
                )
                objects.gate.reset()
        # A blocking observe would wait 2 s per candidate (dozens of them); preparing them takes a few seconds
        # on a slow machine.
        assert time.monotonic() - started < 15.0, 'observe waited for the stopped child'
        assert objects.counts['candidates_dropped'] > 0
        started = time.monotonic()
        with pytest.raises(ObjectsWorkerError, match='did not (take|answer) update within 2 s'):
            objects.update(*scene_map.surface(), 1.0, 1)
        assert time.monotonic() - started < 4.0
        objects.restart()
        objects.timeout_s = 60.0  # the restarted child's first update may take longer than 2 s on a slow machine
        assert objects.update(*scene_map.surface(), 2.0, 2).map_version == 2
    finally:
        objects.close()


def test_a_detector_that_cannot_load_stops_the_start_with_its_parameter_named(tmp_path):
    config = InstanceConfig(detector='transformers', detector_model=str(tmp_path / 'no_model'))
    with pytest.raises(ObjectsWorkerError, match="parameter detector='transformers'"):
        ObjectsProcess(config, MAPPING)


def test_the_child_exits_when_its_parent_dies(tmp_path):
    script = textwrap.dedent("""
        import os, sys
        from gpt4scene_ros.common.settings.instances import InstanceConfig
        from gpt4scene_ros.common.settings.mapping import MappingConfig
        from gpt4scene_ros.objects.process import ObjectsProcess
        objects = ObjectsProcess(InstanceConfig(), MappingConfig(device='CPU:0'))
        print(objects.pid, flush=True)
        os._exit(0)   # no close(): as if killed
    """)
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=120)
    child = int(result.stdout.split()[0])
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        try:
            status = open(f'/proc/{child}/status').read()
        except FileNotFoundError:
            return
        if '\nState:\tZ' in status:  # exited; waits for a parent (here: whoever adopted it) to reap it
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    pytest.fail('the object-layer child outlived its parent')
