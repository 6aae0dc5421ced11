"""Benchmark of the foundation: data loading, gravity alignment, synthetic rendering, playback over DDS.

  source scripts/env.sh && python -P bench/foundation.py [--kitchen ../shared/data/7scenes-redkitchen]

Prints one table (medians and p95 over repeated runs). Needs the package built
(scripts/setup); the real-data rows are skipped when the kitchen folder is absent.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from gpt4scene_ros.io.open import open_sequence
from gpt4scene_ros.mapping.gravity import estimate_gravity_alignment
from gpt4scene_ros.sim.build import build_scene
from gpt4scene_ros.sim.render import camera_path, render_frame
from gpt4scene_ros.sim.scene import SyntheticSceneConfig
from gpt4scene_ros.sim.writer import write_sequence

REPO_ROOT = Path(__file__).resolve().parents[1]


def timed(function, repeats: int) -> np.ndarray:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return np.array(times) * 1000.0


def row(name: str, times_ms: np.ndarray, unit_note: str = '') -> str:
    return f'| {name} | {np.median(times_ms):.1f} | {np.percentile(times_ms, 95):.1f} | {len(times_ms)} | {unit_note} |'


def print_table_header(note: str = '') -> None:
    """The date and machine, then the header of the table that :func:`row` fills."""
    print(
        f'{time.strftime("%Y-%m-%d")}, {platform.machine()}, {os.cpu_count()} cores, '
        f'Python {platform.python_version()}' + (f'; {note}' if note else '')
    )
    print('| step | median ms | p95 ms | runs | note |')
    print('|---|---|---|---|---|')


def bench_dataset(kitchen: Path) -> list:
    rows = [row('open 7-Scenes folder (1000 frames)', timed(lambda: open_sequence(kitchen), 10))]
    sequence = open_sequence(kitchen)
    positions = iter(range(0, 1000, 5))
    rows.append(row('load one 7-Scenes frame (JPEG + PNG + pose)', timed(lambda: sequence.load(next(positions)), 200)))
    rows.append(row('gravity alignment (40 frames)', timed(lambda: estimate_gravity_alignment(sequence), 5)))
    return rows


def bench_synthetic() -> list:
    config = SyntheticSceneConfig(seed=0, num_frames=60)
    scene = build_scene(config)
    poses = iter(camera_path(config) * 2)
    rng = np.random.default_rng(0)
    rows = [
        row('synthetic: render one 640x480 frame', timed(lambda: render_frame(scene, next(poses), config, rng), 60))
    ]
    with tempfile.TemporaryDirectory() as folder:
        total = timed(lambda: write_sequence(config, Path(folder) / 'scene'), 1)
    rows.append(row('synthetic: write 60 frames (per frame)', total / 60, f'{total[0] / 1000:.1f} s in all'))
    return rows


def bench_playback(data_dir: Path, frames: int) -> list:
    """Frames per second through the player (as_fast_as_possible) to a subscriber in this process."""
    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CameraInfo, Image

    from gpt4scene_ros.ros.qos import reliable

    rclpy.init()
    node = rclpy.create_node('bench_subscriber')
    arrivals = []
    qos = reliable(100)
    for topic in ('camera/color/image_raw', 'camera/depth/image_raw'):
        node.create_subscription(Image, topic, lambda msg: arrivals.append(time.perf_counter()), qos)
    node.create_subscription(CameraInfo, 'camera/color/camera_info', lambda msg: None, qos)
    node.create_subscription(Odometry, 'odom', lambda msg: None, qos)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)

    thread = threading.Thread(target=spin)
    thread.start()
    player = REPO_ROOT / '.build' / 'install' / 'gpt4scene_ros' / 'lib' / 'gpt4scene_ros' / 'player'
    subprocess.run(
        [
            str(player),
            '--ros-args',
            '-p',
            f'data_dir:={data_dir}',
            '-p',
            f'max_frames:={frames}',
            '-p',
            'playback_mode:=as_fast_as_possible',
            '-p',
            'wait_for_subscribers:=1',
            '-p',
            'gravity_alignment:=none',
            '--log-level',
            'warn',
        ],
        check=True,
    )
    deadline = time.monotonic() + 30
    while len(arrivals) < 2 * frames and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join()
    node.destroy_node()
    rclpy.shutdown()
    gaps_ms = np.diff(arrivals[1::2]) * 1000.0
    rate = (len(arrivals) / 2 - 1) / (arrivals[-1] - arrivals[0])
    return [
        row(
            f'player as_fast_as_possible: frame interval ({data_dir.name})',
            gaps_ms,
            f'{rate:.0f} frames/s, {len(arrivals) // 2}/{frames} received',
        )
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--kitchen', type=Path, default=REPO_ROOT.parent / 'shared' / 'data' / '7scenes-redkitchen')
    parser.add_argument('--frames', type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault('ROS_DOMAIN_ID', str(60 + os.getpid() % 30))
    print_table_header()
    rows = []
    if args.kitchen.is_dir():
        rows += bench_dataset(args.kitchen)
    rows += bench_synthetic()
    if args.kitchen.is_dir():
        rows += bench_playback(args.kitchen, args.frames)
    for line in rows:
        print(line)


if __name__ == '__main__':
    main()
