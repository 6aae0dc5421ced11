"""End-to-end demo: play a sequence over DDS and ask the query node about it.

  python -m gpt4scene_ros.ros.demo DATA_DIR [--frames N]

Starts the package's ``player`` and ``query_node`` executables (as ``ros2
run`` would), receives every published frame, sends an ``objects``
SceneQuery, prints a summary and stops both nodes. Exit code 0 on success.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import rclpy
from ament_index_python.packages import get_package_prefix
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, Image

from ..core.datasets import SequenceError, open_sequence
from ..srv import SceneQuery
from .conversions import time_from_msg


def _start(name: str, *ros_args: str) -> subprocess.Popen:
    path = Path(get_package_prefix('gpt4scene_ros')) / 'lib' / 'gpt4scene_ros' / name
    return subprocess.Popen([str(path), '--ros-args', *ros_args])


def _stop(process: subprocess.Popen):
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def run_demo(data_dir: str, frames: int, timeout_s: float) -> int:
    expected = min(frames, len(open_sequence(data_dir)))
    received = []
    lock = threading.Lock()
    rclpy.init()
    node = rclpy.create_node('gpt4scene_demo')
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def on_color(msg: Image):
        with lock:
            received.append(time_from_msg(msg.header.stamp))
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Image, 'camera/color/image_raw', on_color, qos)
    # The player waits for a subscriber on each of its data topics.
    for topic, msg_type in (('camera/depth/image_raw', Image), ('camera/color/camera_info', CameraInfo),
                            ('odom', Odometry)):
        node.create_subscription(msg_type, topic, lambda msg: None, qos)
    client = node.create_client(SceneQuery, 'query_node/scene_query')
    query = _start('query_node')
    player = _start('player', '-p', f'data_dir:={data_dir}', '-p', f'max_frames:={frames}',
                    '-p', 'playback_mode:=as_fast_as_possible', '-p', 'wait_for_subscribers:=1')
    started = time.monotonic()
    try:
        while player.poll() is None and time.monotonic() - started < timeout_s:
            executor.spin_once(timeout_sec=0.05)
        if player.poll() is None:
            print(f'demo: the player did not finish within {timeout_s} s', file=sys.stderr)
            return 1
        if player.returncode != 0:
            print(f'demo: the player exited with code {player.returncode}', file=sys.stderr)
            return 1
        play_s = time.monotonic() - started
        while not client.service_is_ready() and time.monotonic() - started < timeout_s:
            executor.spin_once(timeout_sec=0.05)
        response = None
        for _ in range(6):  # a request sent right after discovery can lose its response: ask again
            future = client.call_async(SceneQuery.Request(task=SceneQuery.Request.TASK_OBJECTS))
            executor.spin_until_future_complete(future, timeout_sec=5)
            if future.done():
                response = future.result()
                break
        if response is None:
            print('demo: no answer from query_node/scene_query', file=sys.stderr)
            return 1
        with lock:
            count, span = len(received), (received[-1] - received[0] if received else 0.0)
        print(f'demo: the player published {data_dir} over DDS; received {count} colour frames in {play_s:.1f} s '
              f'(stamps span {span:.2f} s of recorded time)')
        print(f'demo: SceneQuery(task=objects) -> success={response.success}, '
              f'{len(response.instances)} instances, answer: {response.answer!r}, prepare {response.prepare_ms:.1f} ms')
        return 0 if response.success and count == expected else 1
    finally:
        _stop(player)
        _stop(query)
        node.destroy_node()
        rclpy.shutdown()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('data_dir', help='7-Scenes or TUM RGB-D folder to play')
    parser.add_argument('--frames', type=int, default=100, help='frames to play (default 100)')
    parser.add_argument('--timeout', type=float, default=300.0, help='give up after this many seconds')
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error('--frames must be >= 1')
    try:
        return run_demo(args.data_dir, args.frames, args.timeout)
    except SequenceError as error:
        print(f'demo: {error}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
