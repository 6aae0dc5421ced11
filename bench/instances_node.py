"""The mapping node with object instances on and off, as a robot runs it: the player in another process plays the
7-Scenes kitchen in realtime at 30 Hz (looping), the node in a third process.

    source scripts/env.sh && python -P bench/instances_node.py [--seconds 90] [--kitchen DIR]

For each setting (instances off, then on; same duration, same machine) it reads the node's /diagnostics and
prints: frames received and integrated per second, dropped by reason, frame latency median, instance update
median and count, instances published, and the node's peak RSS. The integrated-frame rate with instances on
should be within 10 % of the rate with them off.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import rclpy
import rclpy.executors
from diagnostic_msgs.msg import DiagnosticArray

REPO = Path(__file__).resolve().parents[1]
KITCHEN = REPO.parent / 'shared' / 'data' / '7scenes-redkitchen'


def executable(name: str) -> str:
    from ament_index_python.packages import get_package_prefix

    return str(Path(get_package_prefix('gpt4scene_ros')) / 'lib' / 'gpt4scene_ros' / name)


class Diagnostics:
    def __init__(self, node):
        self.lock = threading.Lock()
        self.values = {}
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on, 10)

    def _on(self, msg):
        for status in msg.status:
            if status.name == 'gpt4scene_ros: mapping':
                with self.lock:
                    self.values = {kv.key: float(kv.value) for kv in status.values}

    def get(self):
        with self.lock:
            return dict(self.values)


def rss_mb(pid: int, children: bool = True) -> float:
    """RSS of a process and (by default) its children (the mapping node's object layer runs in a child), MB."""
    total, found = 0.0, False
    for member in [pid] + (descendants(pid) if children else []):
        try:
            for line in Path(f'/proc/{member}/status').read_text().splitlines():
                if line.startswith('VmRSS:'):
                    total += int(line.split()[1]) / 1024.0
                    found = True
        except OSError:
            pass
    return total if found else float('nan')


def descendants(pid: int) -> list[int]:
    children = []
    for task in Path(f'/proc/{pid}/task').glob('*') if Path(f'/proc/{pid}/task').exists() else ():
        try:
            children += [int(c) for c in (task / 'children').read_text().split()]
        except (OSError, ValueError):
            pass
    return children + [d for c in children for d in descendants(c)]


def run(kitchen: Path, seconds: float, instances: bool, diagnostics: Diagnostics, log_dir: Path) -> dict:
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    mapping_log = open(log_dir / f'mapping_instances_{instances}.log', 'w')
    mapping = subprocess.Popen(
        [
            executable('mapping_node'),
            '--ros-args',
            '-p',
            f'instances_enabled:={str(instances).lower()}',
            '-p',
            'diagnostics_period_s:=1.0',
        ],
        stdout=mapping_log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    player_log = open(log_dir / f'player_instances_{instances}.log', 'w')
    player = subprocess.Popen(
        [
            executable('player'),
            '--ros-args',
            '-p',
            f'data_dir:={kitchen}',
            '-p',
            'loop:=true',
            '-p',
            'rate_hz:=30.0',
            '-p',
            'wait_for_subscribers:=1',
        ],
        stdout=player_log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while diagnostics.get().get('frames_received', 0) < 30:
            if time.monotonic() > deadline:
                raise RuntimeError(f'no frames reached the node; see {log_dir}')
            time.sleep(0.2)
        warm = 10.0  # let discovery and the first map settle
        time.sleep(warm)
        start, t0 = diagnostics.get(), time.monotonic()
        peak = 0.0
        while time.monotonic() - t0 < seconds:
            time.sleep(1.0)
            peak = max(peak, rss_mb(mapping.pid))
        end, t1 = diagnostics.get(), time.monotonic()
    finally:
        for process in (player, mapping):
            process.send_signal(signal.SIGINT)
        for process in (player, mapping):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        mapping_log.close()
        player_log.close()
    span = t1 - t0

    def rate(key):
        return (end.get(key, 0.0) - start.get(key, 0.0)) / span

    dropped = {k[len('dropped_') :]: round(rate(k) * span) for k in end if k.startswith('dropped_') and rate(k) > 0}
    return {
        'received_hz': rate('frames_received'),
        'integrated_hz': rate('frames_integrated'),
        'dropped': dropped,
        'latency_ms': end.get('frame_latency_ms_median', float('nan')),
        'integrate_ms': end.get('integrate_ms_median', float('nan')),
        'instance_update_ms': end.get('instance_update_ms_median', float('nan')),
        'instances': end.get('instances', 0),
        'peak_rss_mb': peak,
        'seconds': span,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=90.0)
    parser.add_argument('--kitchen', type=Path, default=KITCHEN)
    args = parser.parse_args(argv)
    if not (args.kitchen / 'camera-intrinsics.txt').exists():
        print(f'no 7-Scenes data at {args.kitchen}', file=sys.stderr)
        return 1
    log_dir = REPO / 'out' / 'bench' / 'instances_node'
    log_dir.mkdir(parents=True, exist_ok=True)
    rclpy.init()
    node = rclpy.create_node('bench_instances_node')
    diagnostics = Diagnostics(node)
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    rows = {}
    for instances in (False, True):
        diagnostics.values = {}
        rows[instances] = run(args.kitchen, args.seconds, instances, diagnostics, log_dir)
        time.sleep(3.0)
    print(
        f'\nMapping node, kitchen played in realtime at 30 Hz (player in another process), {args.seconds:.0f} s each '
        f'after 10 s warm-up; {platform.node()}, {os.cpu_count()} cores\n'
    )
    print(
        '| instances | received /s | integrated /s | dropped (count by reason) | latency median ms | '
        'integrate median ms | instance update median ms | instances | peak RSS MB |'
    )
    print('|---|---|---|---|---|---|---|---|---|')
    for instances, r in rows.items():
        print(
            f'| {"on" if instances else "off"} | {r["received_hz"]:.1f} | {r["integrated_hz"]:.1f} | '
            f'{r["dropped"] or "none"} | {r["latency_ms"]:.1f} | {r["integrate_ms"]:.1f} | '
            f'{r["instance_update_ms"] if instances else "-"} | {int(r["instances"]) if instances else "-"} | '
            f'{r["peak_rss_mb"]:.0f} |'
        )
    off, on = rows[False]['integrated_hz'], rows[True]['integrated_hz']
    print(f'\nintegrated-frame rate with instances on / off: {on / max(off, 1e-9):.3f}')
    executor.shutdown()
    spinner.join(timeout=5)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
