"""Soak benchmark: the graph as a robot runs it, for a long time.

    source scripts/env.sh && python -P bench/soak.py [--minutes 30] [--data DIR] [--out DIR] [--json FILE]

The player loops the data (default: the 7-Scenes kitchen) in realtime at 30 Hz in its own process, into
``mapping_node`` (instances on) and ``query_node`` (the tiny random Qwen2-VL), each in its own process; this
process asks a question every ``--query-period-s`` and watches the outputs. Every 10 s it records each node's
RSS and the mapping node's diagnostics (frames received, integrated, skipped and dropped by reason, frame
latency p50/p95); it times every query and the arrival of every output. It prints one row per minute, the
largest gap of each output against its period, and the checks of the soak targets; it writes a PNG of RSS and
latency over time next to the numbers (``--out``, default out/bench/soak/).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for extra in (REPO / 'scripts', REPO / 'bench'):
    sys.path.insert(0, str(extra))
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(REPO / 'config' / 'fastdds.xml'))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('HF_HUB_OFFLINE', '1')

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
import rclpy.executors  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from instances_node import KITCHEN, descendants, executable, rss_mb  # noqa: E402
from sensor_msgs.msg import Image, PointCloud2  # noqa: E402

from gpt4scene_ros.msg import ObjectInstanceArray, SceneSnapshot  # noqa: E402
from gpt4scene_ros.ros.qos import LATCHED  # noqa: E402
from gpt4scene_ros.srv import SceneQuery  # noqa: E402

SAMPLE_S = 10.0
# Output -> (topic, type, the period the node publishes it at while the map changes).
OUTPUTS = {
    'bev': ('mapping_node/bev', Image, 1.0),
    'map_cloud': ('mapping_node/map_cloud', PointCloud2, 2.0),
    'objects': ('mapping_node/objects', ObjectInstanceArray, 2.0),
    'scene_snapshot': ('mapping_node/scene_snapshot', SceneSnapshot, 2.0),
    'diagnostics': ('/diagnostics', DiagnosticArray, 1.0),
}
NODE_PARAMS = {
    'mapping_node': {'diagnostics_period_s': 1.0, 'bev_period_s': 1.0, 'cloud_period_s': 2.0, 'instance_period_s': 2.0},
    'query_node': {'backend': 'transformers', 'device': 'cpu', 'max_new_tokens': 16},
}


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process and its children have used."""
    total = 0.0
    try:
        for member in [pid] + descendants(pid):
            fields = Path(f'/proc/{member}/stat').read_text().rsplit(')', 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
    except (OSError, IndexError, ValueError):
        return float('nan')
    return total


def start(name: str, params: dict, log_dir: Path) -> subprocess.Popen:
    args = [executable(name), '--ros-args']
    for key, value in params.items():
        args += ['-p', f'{key}:={str(value).lower() if isinstance(value, bool) else value}']
    log = open(log_dir / f'{name}.log', 'w')
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, 'PYTHONUNBUFFERED': '1'})


class Watch:
    """Arrival times of every output, the latest mapping diagnostics, query round trips."""

    def __init__(self, node):
        self.lock = threading.Lock()
        self.arrivals = collections.defaultdict(list)
        self.diagnostics = {}
        for key, (topic, msg_type, _) in OUTPUTS.items():
            qos = 10 if key == 'diagnostics' else LATCHED
            node.create_subscription(msg_type, topic, lambda msg, key=key: self._on(key, msg), qos)

    def _on(self, key, msg):
        now = time.monotonic()
        with self.lock:
            if key == 'diagnostics':
                status = next((s for s in msg.status if s.name == 'gpt4scene_ros: mapping'), None)
                if status is None:
                    return
                self.diagnostics = {kv.key: kv.value for kv in status.values}
                self.diagnostics['_level'] = (
                    int.from_bytes(status.level, 'little') if isinstance(status.level, bytes) else int(status.level)
                )
            self.arrivals[key].append(now)

    def counters(self) -> dict:
        with self.lock:
            values = dict(self.diagnostics)
        out = {}
        for key, value in values.items():
            try:
                out[key] = float(value)
            except ValueError:
                pass
        return out


def largest_gaps(arrivals: dict, since: float, until: float) -> dict:
    gaps = {}
    for key, times in arrivals.items():
        inside = [t for t in times if since <= t <= until]
        gaps[key] = max(np.diff([since] + inside + [until])) if inside else until - since
    return gaps


def run(args) -> dict:
    log_dir = args.out
    log_dir.mkdir(parents=True, exist_ok=True)
    from gpt4scene_ros.sim.tiny_models import make_tiny_vlm

    model = make_tiny_vlm(Path(tempfile.mkdtemp(prefix='gpt4scene_soak_')) / 'qwen2-vl', 'qwen2-vl')
    rclpy.init()
    node = rclpy.create_node('gpt4scene_soak')
    executor = rclpy.executors.SingleThreadedExecutor()  # the multi-threaded one polls a core away
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    watch = Watch(node)
    processes = {
        'mapping_node': start('mapping_node', NODE_PARAMS['mapping_node'], log_dir),
        'query_node': start('query_node', {**NODE_PARAMS['query_node'], 'model': str(model)}, log_dir),
        'player': start(
            'player',
            {
                'data_dir': str(args.data),
                'loop': True,
                'rate_hz': 30.0,
                'wait_for_subscribers': 1,
                **NODE_PARAMS.get('player', {}),
            },
            log_dir,
        ),
    }
    client = node.create_client(SceneQuery, 'query_node/scene_query')
    samples, queries = [], []
    stop = threading.Event()

    def ask_periodically(t0):
        """In its own thread, so that a slow answer never delays the samples."""
        next_query = t0 + args.query_period_s
        while not stop.wait(max(0.0, next_query - time.monotonic())):
            next_query += args.query_period_s
            started = time.monotonic()
            future = client.call_async(SceneQuery.Request(task='qa', question='Where is the table?', num_frames=8))
            while not future.done() and time.monotonic() - started < 60 and not stop.is_set():
                time.sleep(0.01)
            if not future.done():
                client.remove_pending_request(future)
                if stop.is_set():
                    break  # cut short by the end of the soak: not a failed query
            response = future.result() if future.done() else None
            queries.append(
                {
                    't': started - t0,
                    'ms': (time.monotonic() - started) * 1000.0,
                    'ok': bool(response is not None and response.success),
                    'message': response.message if response is not None else 'no answer in 60 s',
                }
            )

    try:
        deadline = time.monotonic() + 180
        while watch.counters().get('frames_received', 0) < 1 or not client.service_is_ready():
            if time.monotonic() > deadline:
                raise RuntimeError('no frames at the mapping node, or no query service, within 180 s')
            time.sleep(0.2)
        t0 = time.monotonic()
        end = t0 + args.minutes * 60.0
        asker = threading.Thread(target=ask_periodically, args=(t0,), daemon=True)
        if args.query_period_s > 0:
            asker.start()
        next_sample = t0
        while time.monotonic() < end:
            dead = [name for name, p in processes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f'{", ".join(dead)} exited during the soak (logs in {log_dir})')
            now = time.monotonic()
            if now >= next_sample:
                samples.append(
                    {
                        't': now - t0,
                        **{f'rss_{n}': rss_mb(p.pid) for n, p in processes.items()},
                        'rss_mapping_node_alone': rss_mb(processes['mapping_node'].pid, children=False),
                        **{f'cpu_{n}': cpu_s(p.pid) for n, p in processes.items()},
                        **watch.counters(),
                    }
                )
                next_sample += SAMPLE_S
            time.sleep(0.05)
        stop.set()
        if asker.is_alive():
            asker.join(65)
        samples.append(
            {
                't': time.monotonic() - t0,
                **{f'rss_{n}': rss_mb(p.pid) for n, p in processes.items()},
                'rss_mapping_node_alone': rss_mb(processes['mapping_node'].pid, children=False),
                **{f'cpu_{n}': cpu_s(p.pid) for n, p in processes.items()},
                **watch.counters(),
            }
        )
        gaps = largest_gaps(watch.arrivals, t0 + 30.0, time.monotonic())
    finally:
        for p in processes.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in processes.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        executor.shutdown()  # before the context goes: a spin that outlives it raises ExternalShutdownException
        spinner.join(timeout=5)
        node.destroy_node()
        rclpy.try_shutdown()
    return {
        'samples': samples,
        'queries': queries,
        'gaps': gaps,
        'periods': {k: v[2] for k, v in OUTPUTS.items()},
        'minutes': args.minutes,
    }


def rate(samples, key, a, b) -> float:
    return (b.get(key, 0) - a.get(key, 0)) / max(b['t'] - a['t'], 1e-9)


def summarise(result: dict) -> dict:
    samples, queries = result['samples'], result['queries']
    print(
        '\n| minute | RSS mapping MB | RSS query MB | RSS player MB | received /s | integrated /s | skipped /s '
        '| dropped /s | latency p50 ms | latency p95 ms | query median ms | CPU % mapping / query / player |'
    )
    print('|---|---|---|---|---|---|---|---|---|---|---|---|')
    rows = []
    by_minute = collections.defaultdict(list)
    for s in samples:
        by_minute[int(s['t'] // 60)].append(s)
    minutes = sorted(by_minute)
    for m in minutes:
        group = by_minute[m]
        a = group[0] if m == 0 else by_minute[m - 1][-1]
        b = group[-1]
        dropped = sum(rate(samples, k, a, b) for k in b if k.startswith('dropped_'))
        skipped = rate(samples, 'frames_skipped_behind', a, b)
        q = [x['ms'] for x in queries if m * 60 <= x['t'] < (m + 1) * 60 and x['ok']]
        row = {
            'minute': m,
            'rss_mapping': b.get('rss_mapping_node'),
            'rss_query': b.get('rss_query_node'),
            'rss_player': b.get('rss_player'),
            'received': rate(samples, 'frames_received', a, b),
            'integrated': rate(samples, 'frames_integrated', a, b),
            'skipped': skipped,
            'dropped': dropped,
            'p50': b.get('frame_latency_ms_median', float('nan')),
            'p95': b.get('frame_latency_ms_p95', float('nan')),
            'query_ms': statistics.median(q) if q else float('nan'),
            'cpu': [100.0 * rate(samples, f'cpu_{n}', a, b) for n in ('mapping_node', 'query_node', 'player')],
        }
        rows.append(row)
        print(
            f'| {m} | {row["rss_mapping"]:.0f} | {row["rss_query"]:.0f} | {row["rss_player"]:.0f} | '
            f'{row["received"]:.1f} | {row["integrated"]:.1f} | {row["skipped"]:.1f} | {row["dropped"]:.1f} | '
            f'{row["p50"]:.0f} | {row["p95"]:.0f} | {row["query_ms"]:.0f} | '
            f'{" / ".join(f"{c:.0f}" for c in row["cpu"])} |'
        )
    last = samples[-1]
    drops = {k[len('dropped_') :]: int(v) for k, v in last.items() if k.startswith('dropped_') and v}
    print(
        f'\ntotal: {int(last.get("frames_received", 0))} frames received, '
        f'{int(last.get("frames_integrated", 0))} integrated, {int(last.get("frames_skipped_behind", 0))} '
        f'skipped to keep up, dropped {drops or "none"}; '
        f'{sum(q["ok"] for q in queries)}/{len(queries)} queries answered'
    )
    print('\n| output | period s | largest gap s | gap / period |')
    print('|---|---|---|---|')
    for key, gap in sorted(result['gaps'].items()):
        period = result['periods'][key]
        print(f'| {key} | {period:.1f} | {gap:.2f} | {gap / period:.2f} |')
    checks = {}
    five = [s for s in samples if s['t'] >= 300.0]
    if len(five) >= 2:
        rss = [s['rss_mapping_node'] for s in five]
        checks['mapping RSS growth, minute 5 to end (<= 5 %)'] = 100.0 * (rss[-1] - rss[0]) / rss[0]
    if len(rows) >= 3:
        checks['dropped /s, last minute minus first full minute'] = rows[-1]['dropped'] - rows[1]['dropped']
    ok = [q['ms'] for q in queries if q['ok']]
    if len(ok) >= 6:
        third = len(ok) // 3
        checks['query median, last third / first third'] = statistics.median(ok[-third:]) / statistics.median(
            ok[:third]
        )
    for name, value in checks.items():
        print(f'{name}: {value:.3f}')
    return {'rows': rows, 'checks': checks, 'drops': drops}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    samples, queries = result['samples'], result['queries']
    t = [s['t'] / 60.0 for s in samples]
    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    for name in ('mapping_node', 'query_node', 'player'):
        top.plot(t, [s[f'rss_{name}'] for s in samples], label=name)
    top.set_ylabel('RSS (MB)')
    top.legend(loc='upper left')
    top.set_title(f'soak: {result["minutes"]:.0f} min, player looping in realtime at 30 Hz')
    middle.plot(t, [s.get('frame_latency_ms_median', np.nan) for s in samples], label='frame latency p50')
    middle.plot(t, [s.get('frame_latency_ms_p95', np.nan) for s in samples], label='frame latency p95')
    middle.axhline(100.0, color='grey', linestyle=':', label='p95 target')
    middle.set_ylabel('ms')
    middle.legend(loc='upper left')
    bottom.plot(
        [q['t'] / 60.0 for q in queries if q['ok']],
        [q['ms'] for q in queries if q['ok']],
        '.',
        label='query round trip',
    )
    failed = [q for q in queries if not q['ok']]
    if failed:
        bottom.plot([q['t'] / 60.0 for q in failed], [q['ms'] for q in failed], 'rx', label='failed query')
    bottom.set_ylabel('ms')
    bottom.set_xlabel('minutes')
    bottom.legend(loc='upper left')
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--minutes', type=float, default=30.0)
    parser.add_argument('--data', type=Path, default=KITCHEN, help='7-Scenes or TUM folder to loop')
    parser.add_argument('--query-period-s', type=float, default=10.0, help='0: no queries')
    parser.add_argument('--out', type=Path, default=REPO / 'out' / 'bench' / 'soak')
    parser.add_argument('--json', type=Path, help='also write the samples, queries and checks here')
    parser.add_argument(
        '-p',
        dest='overrides',
        action='append',
        default=[],
        metavar='NODE.PARAM=VALUE',
        help='a parameter of mapping_node, query_node or player',
    )
    args = parser.parse_args(argv)
    for override in args.overrides:
        name, _, value = override.partition('=')
        node_name, _, param = name.partition('.')
        NODE_PARAMS.setdefault(node_name, {})[param] = value
    if not args.data.exists():
        print(f'soak: no data at {args.data}', file=sys.stderr)
        return 2
    print(f'soak benchmark, {platform.node()}, {os.cpu_count()} cores, {args.minutes:g} min on {args.data}')
    result = run(args)
    summary = summarise(result)
    png = args.out / 'soak.png'
    plot(result, png)
    print(f'\nplot: {png}')
    if args.json:
        args.json.write_text(json.dumps({**result, **summary}, indent=1, default=float))
    return 0


if __name__ == '__main__':
    sys.exit(main())
