"""Shared test set-up: one DDS domain per test session, data paths, node processes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'
KITCHEN = SHARED_DATA / '7scenes-redkitchen'

# Before anything creates a DDS participant: a domain of our own, and discovery
# kept on this machine. Subprocess nodes inherit both.
# Under pytest-xdist each worker takes a domain of its own (neighbours in one run; the workers inherit the
# controller's environment, so the worker's domain is set, not defaulted).
if 'PYTEST_XDIST_WORKER' in os.environ:
    _worker = int(os.environ['PYTEST_XDIST_WORKER'].removeprefix('gw') or 0)
    _first = random.Random(os.environ.get('PYTEST_XDIST_TESTRUNUID', '')).randint(0, 99)
    os.environ['ROS_DOMAIN_ID'] = str(1 + (_first + _worker) % 100)
else:
    os.environ.setdefault('ROS_DOMAIN_ID', str(random.Random(os.getpid() ^ time.time_ns()).randint(1, 100)))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
# Nothing may be downloaded at test time.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
# Hypothesis keeps its files out of the repository.
os.environ.setdefault('HYPOTHESIS_STORAGE_DIRECTORY', os.path.join(tempfile.gettempdir(), 'gpt4scene_hypothesis'))
# Nodes started by the tests keep their default map_directory out of the user's home.
os.environ['XDG_DATA_HOME'] = tempfile.mkdtemp(prefix='gpt4scene_test_data_')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(REPO_ROOT / 'config' / 'fastdds.xml'))


def wait_for(condition, timeout_s: float, what: str, poll_s: float = 0.02, details=None):
    """Poll ``condition`` until it returns a truthy value; fail the test after ``timeout_s``.

    ``details``, a function, adds what it returns to the failure message.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f'timed out after {timeout_s} s waiting for {what}' + (f'; {details()}' if details else ''))
        time.sleep(poll_s)


@pytest.fixture
def kitchen_dir() -> Path:
    if not (KITCHEN / 'camera-intrinsics.txt').exists():
        pytest.skip(f'real 7-Scenes data not found at {KITCHEN}')
    return KITCHEN


def executable(name: str) -> str:
    """Path of an installed entry point, where `ros2 run gpt4scene_ros NAME` would find it."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        prefix = Path(get_package_prefix('gpt4scene_ros'))
    except PackageNotFoundError:
        pytest.fail('gpt4scene_ros is not built/sourced: run the tests through scripts/test')
    path = prefix / 'lib' / 'gpt4scene_ros' / name
    assert path.exists(), f'{path} is not installed'
    return str(path)


class NodeProcess:
    """A package executable in a subprocess, its output in a log file."""

    def __init__(self, name: str, params: dict, log_dir: Path, remaps: dict | None = None):
        args = [executable(name), '--ros-args']
        for key, value in params.items():
            if isinstance(value, bool):
                value = str(value).lower()
            elif value == '':
                value = "''"
            args += ['-p', f'{key}:={value}']
        for old, new in (remaps or {}).items():
            args += ['-r', f'{old}:={new}']
        self.log_path = log_dir / f'{name}.{time.monotonic_ns()}.log'
        self._log = open(self.log_path, 'w')
        self.process = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, 'PYTHONUNBUFFERED': '1'}
        )

    @property
    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def wait(self, timeout_s: float) -> int:
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f'{self.process.args[0]} did not exit within {timeout_s} s; output:\n{self.output}')

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def start_node(tmp_path):
    """Start package executables; every one still running is stopped at the end of the test."""
    started = []

    def start(name: str, params: dict | None = None, remaps: dict | None = None) -> NodeProcess:
        node = NodeProcess(name, params or {}, tmp_path, remaps)
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def ros_node():
    """An rclpy node of the test process, spun by a background executor thread."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f'test_{os.getpid()}_{time.monotonic_ns()}', context=context)
    executor = MultiThreadedExecutor(context=context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield node
    executor.shutdown()
    thread.join(timeout=5)
    node.destroy_node()
    rclpy.shutdown(context=context)


def call_service(node, client, request, timeout_s: float = 30.0, attempt_s: float = 5.0):
    """Call a service from a test and return its response (the node is spun by ``ros_node``).

    :func:`gpt4scene_ros.ros.service_client.call_service`: up to ``timeout_s`` for the server to be
    discovered, then up to ``timeout_s`` for the response, the request sent again every ``attempt_s``
    (a request sent just after discovery can lose its response). Fails the test when none comes.
    """
    from gpt4scene_ros.ros.service_client import ServiceNotReady, ServiceTimeout
    from gpt4scene_ros.ros.service_client import call_service as call

    try:
        return call(client, request, timeout_s, ready_timeout_s=timeout_s, resend_s=attempt_s, poll_s=0.01)
    except ServiceNotReady:
        pytest.fail(f'timed out after {timeout_s} s waiting for service {client.srv_name}')
    except ServiceTimeout:
        pytest.fail(f'timed out after {timeout_s} s waiting for a response from {client.srv_name}')


@pytest.fixture(scope='session')
def tiny_models(tmp_path_factory):
    """Tiny random models built from configs (gpt4scene_ros.sim.tiny_models): nothing is downloaded."""
    from gpt4scene_ros.sim.tiny_models import make_tiny_sam, make_tiny_segmenter, make_tiny_vlm

    folder = tmp_path_factory.mktemp('tiny_models')
    make_tiny_segmenter(folder / 'segformer')
    make_tiny_sam(folder / 'sam')
    for family in ('qwen2-vl', 'qwen2.5-vl'):
        make_tiny_vlm(folder / family, family)
    return folder


def fused_room(folder, seed: int, num_frames: int, mapping):
    """A clean generated room (objects apart) at 320x240 written to ``folder`` and fused frame by frame:
    (folder, sequence, scene_map, frames)."""
    from gpt4scene_ros.io.open import open_sequence
    from gpt4scene_ros.mapping.tsdf import SceneMap
    from gpt4scene_ros.sim.scene import SyntheticSceneConfig
    from gpt4scene_ros.sim.writer import write_sequence

    write_sequence(
        SyntheticSceneConfig(seed=seed, num_frames=num_frames, clutter='none').with_resolution(320, 240), folder
    )
    sequence = open_sequence(folder)
    scene_map = SceneMap(mapping)
    frames = []
    for position in range(len(sequence)):
        frame = sequence.load(position)
        assert scene_map.integrate(frame.color, frame.depth_m, sequence.intrinsics, frame.T_world_camera).integrated
        frames.append(frame)
    return folder, sequence, scene_map, frames


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (e.g. the mapping node's object-layer process)."""
    found = []
    for task in Path(f'/proc/{pid}/task').iterdir():
        found += [int(c) for c in (task / 'children').read_text().split()]
    return found


def pytest_collection_modifyitems(config, items):
    """Tests that play data in real time for tens of seconds run one after another on one xdist worker
    (``--dist loadgroup``); the short ROS tests share the other cores."""
    for item in items:
        if item.get_closest_marker('realtime'):
            item.add_marker(pytest.mark.xdist_group('realtime'))


def pytest_sessionstart(session):
    """Tests kill nodes on purpose (kill -9): remove the Fast DDS segments earlier runs left in /dev/shm, which
    otherwise pile up in memory (gpt4scene_ros/ros/dds_shm.py; the nodes do the same as they start)."""
    if hasattr(session.config, 'workerinput'):
        return  # the controller does it once
    from gpt4scene_ros.ros.dds_shm import remove_stale_segments

    remove_stale_segments()
