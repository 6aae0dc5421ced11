"""Live benchmark: the graph as a robot runs it, one table row per run.

    source scripts/env.sh && python -P bench/live.py [--runs idle queries 60hz 720p] [--minutes 2] [--data DIR]

Each run starts the player (looping its data in realtime), ``mapping_node`` (instances on, default settings)
and ``query_node`` (the tiny random Qwen2-VL) in processes of their own, as a robot runs them, lets the map grow
for ``--warm-up-s`` (not counted), then records for ``--minutes``: the mapping node's diagnostics every 2 s, the
arrival of every output, each query's round trip, and RSS and CPU of every process. Runs:

- ``idle``: the 7-Scenes kitchen (640x480) at 30 Hz, no queries;
- ``queries``: the same with a ``qa`` query (8 keyframes) every 2 s;
- ``60hz``: the kitchen at 60 Hz (overload: the stride must engage, queues and latency stay bounded);
- ``720p``: a generated room at 1280x720, 30 Hz (written once to ``out/bench/live/room_720p``).

Columns: input rate and resolution; frames received by the node per second (after synchronisation); the
share of them integrated; frame latency p50/p95 (arrival -> integrated; medians of the 2 s samples of the
node's last-200-frames window, and the largest p95); each output's period, median / max (s); RSS of each
process at the start and the end of the window (the mapping node with its object-layer child); CPU of each
process (mapping node, its child, query node, player, this benchmark); whether the adaptive stride engaged.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
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
from instances_node import KITCHEN, descendants, rss_mb  # noqa: E402
from soak import OUTPUTS, Watch, start  # noqa: E402

from gpt4scene_ros.srv import SceneQuery  # noqa: E402

SAMPLE_S = 2.0
ROOM_720P = REPO / 'out' / 'bench' / 'live' / 'room_720p'
RUNS = {
    'idle': {'data': 'kitchen', 'rate_hz': 30.0, 'query_period_s': 0.0},
    'queries': {'data': 'kitchen', 'rate_hz': 30.0, 'query_period_s': 2.0},
    '60hz': {'data': 'kitchen', 'rate_hz': 60.0, 'query_period_s': 0.0},
    '720p': {'data': '720p', 'rate_hz': 30.0, 'query_period_s': 0.0},
}
NODE_PARAMS = {
    'mapping_node': {},
    'query_node': {'backend': 'transformers', 'device': 'cpu', 'max_new_tokens': 16},
    'player': {},
}


def cpu_s(pid: int, with_children: bool) -> float:
    """User + system CPU seconds of a process (and its children)."""
    total = 0.0
    for member in [pid] + (descendants(pid) if with_children else []):
        try:
            fields = Path(f'/proc/{member}/stat').read_text().rsplit(')', 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
        except (OSError, IndexError, ValueError):
            pass
    return total


def resolution(data: Path) -> str:
    import cv2

    first = sorted(data.glob('frame-*.depth.png'))[0]
    height, width = cv2.imread(str(first), cv2.IMREAD_UNCHANGED).shape[:2]
    return f'{width}x{height}'


def data_folder(name: str, kitchen: Path) -> Path:
    if name == 'kitchen':
        return kitchen
    if not (ROOM_720P / 'instances.json').exists():
        from gpt4scene_ros.sim.scene import SyntheticSceneConfig
        from gpt4scene_ros.sim.writer import write_sequence

        print(f'writing the 1280x720 room to {ROOM_720P} (once)', flush=True)
        write_sequence(SyntheticSceneConfig(seed=7, num_frames=300).with_resolution(1280, 720), ROOM_720P)
    return ROOM_720P


def run(name: str, settings: dict, args, model: Path, node) -> dict:
    data = data_folder(settings['data'], args.data)
    log_dir = args.out / name
    log_dir.mkdir(parents=True, exist_ok=True)
    watch = Watch(node)
    processes = {
        'mapping': start('mapping_node', NODE_PARAMS['mapping_node'], log_dir),
        'query': start('query_node', {**NODE_PARAMS['query_node'], 'model': str(model)}, log_dir),
        'player': start(
            'player',
            {
                'data_dir': str(data),
                'loop': True,
                'rate_hz': settings['rate_hz'],
                'wait_for_subscribers': 1,
                **NODE_PARAMS['player'],
            },
            log_dir,
        ),
    }
    client = node.create_client(SceneQuery, 'query_node/scene_query')
    queries, samples = [], []
    stop = threading.Event()

    def ask(period_s: float) -> None:
        next_at = time.monotonic()
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            next_at += period_s
            started = time.monotonic()
            future = client.call_async(SceneQuery.Request(task='qa', question='Where is the table?', num_frames=8))
            while not future.done() and time.monotonic() - started < 60 and not stop.is_set():
                time.sleep(0.005)
            if future.done():
                response = future.result()
                queries.append((started, (time.monotonic() - started) * 1000.0, response.success, response.prepare_ms))
            else:
                client.remove_pending_request(future)

    def sample() -> dict:
        record = {'t': time.monotonic(), **watch.counters()}
        for key, process in processes.items():
            record[f'rss_{key}'] = rss_mb(process.pid)
            record[f'cpu_{key}'] = cpu_s(process.pid, with_children=False)
            if key == 'mapping':
                record['cpu_child'] = cpu_s(process.pid, with_children=True) - record['cpu_mapping']
        record['cpu_bench'] = time.process_time()
        return record

    asker = None
    try:
        deadline = time.monotonic() + 180
        while watch.counters().get('frames_received', 0) < 1 or not client.service_is_ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f'{name}: no frames at the mapping node or no query service within 180 s')
            if any(p.poll() is not None for p in processes.values()):
                raise RuntimeError(f'{name}: a node exited during start-up (logs in {log_dir})')
            time.sleep(0.2)
        if settings['query_period_s'] > 0:
            # The queries start with the warm-up, so the query node prepares snapshots ahead as in use.
            asker = threading.Thread(target=ask, args=(settings['query_period_s'],), daemon=True)
            asker.start()
        time.sleep(args.warm_up_s)
        t0 = time.monotonic()
        end = t0 + args.minutes * 60.0
        while time.monotonic() < end:
            dead = [key for key, p in processes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f'{name}: {", ".join(dead)} exited (logs in {log_dir})')
            samples.append(sample())
            time.sleep(max(0.0, SAMPLE_S - (time.monotonic() - samples[-1]['t'])))
        samples.append(sample())
        t1 = time.monotonic()
    finally:
        stop.set()
        if asker is not None:
            asker.join(65)
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(2)
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except Exception:  # noqa: BLE001 - a stuck node must not hang the benchmark
                process.kill()
    return summarise(name, settings, data, samples, watch, queries, t0, t1)


def summarise(name, settings, data, samples, watch, queries, t0, t1) -> dict:
    first, last = samples[0], samples[-1]
    span = last['t'] - first['t']

    def rate(key: str) -> float:
        return (last.get(key, 0.0) - first.get(key, 0.0)) / span

    received, integrated = rate('frames_received'), rate('frames_integrated')
    periods = {}
    with watch.lock:
        arrivals = {key: [t for t in times if t0 <= t <= t1] for key, times in watch.arrivals.items()}
    for key in OUTPUTS:
        times = arrivals.get(key, [])
        gaps = np.diff([t0, *times, t1]) if times else np.array([t1 - t0])
        periods[key] = (float(np.median(np.diff(times))) if len(times) > 1 else float('nan'), float(gaps.max()))
    ok = [q for q in queries if t0 <= q[0] <= t1 and q[2]]
    return {
        'run': name,
        'input': f'{settings["rate_hz"]:.0f} Hz {resolution(data)}',
        'received_hz': received,
        'integrated_share': integrated / received if received else float('nan'),
        'integrated_hz': integrated,
        'skipped': int(last.get('frames_skipped_behind', 0) - first.get('frames_skipped_behind', 0)),
        'dropped_queue_full': int(last.get('dropped_queue_full', 0) - first.get('dropped_queue_full', 0)),
        'latency_p50_ms': statistics.median(s.get('frame_latency_ms_median', float('nan')) for s in samples),
        'latency_p95_ms': statistics.median(s.get('frame_latency_ms_p95', float('nan')) for s in samples),
        'latency_p95_max_ms': max(s.get('frame_latency_ms_p95', float('nan')) for s in samples),
        'queue_max': max(s.get('frame_queue_length', 0) for s in samples),
        'stride_engaged': any(s.get('stride_engaged', 0) for s in samples),
        'periods': periods,
        'rss': {key: (first[f'rss_{key}'], last[f'rss_{key}']) for key in ('mapping', 'query', 'player')},
        'cpu': {key: 100.0 * rate(f'cpu_{key}') for key in ('mapping', 'child', 'query', 'player', 'bench')},
        'queries': len(ok),
        'query_ms': statistics.median(q[1] for q in ok) if ok else float('nan'),
        'query_prepare_ms': statistics.median(q[3] for q in ok) if ok else float('nan'),
        'integrate_ms': statistics.median(s.get('integrate_ms_median', float('nan')) for s in samples),
        'instance_update_ms': statistics.median(s.get('instance_update_ms_median', float('nan')) for s in samples),
        'surface_read_ms': statistics.median(s.get('surface_read_ms_median', float('nan')) for s in samples),
        'map_thread_busy_share': statistics.median(s.get('map_thread_busy_share', float('nan')) for s in samples),
        'instances': last.get('instances'),
    }


def print_table(results: list) -> None:
    outputs = [key for key in OUTPUTS if key != 'diagnostics'] + ['diagnostics']
    print(
        '\n| run | input | received /s | integrated | latency p50 / p95 (max) ms | '
        + ' | '.join(f'{key} period s (max)' for key in outputs)
        + ' | RSS MB mapping / query / player (start -> end) | CPU % mapping + child / query / player / bench '
        '| stride engaged | queries (median ms, prepare ms) |'
    )
    print('|' + '---|' * (9 + len(outputs)))
    for r in results:
        rss = ' / '.join(f'{a:.0f}->{b:.0f}' for a, b in r['rss'].values())
        cpu = r['cpu']
        print(
            f'| {r["run"]} | {r["input"]} | {r["received_hz"]:.1f} | {100 * r["integrated_share"]:.1f} % | '
            f'{r["latency_p50_ms"]:.0f} / {r["latency_p95_ms"]:.0f} ({r["latency_p95_max_ms"]:.0f}) | '
            + ' | '.join(f'{r["periods"][k][0]:.2f} ({r["periods"][k][1]:.2f})' for k in outputs)
            + f' | {rss} | {cpu["mapping"]:.0f} + {cpu["child"]:.0f} / {cpu["query"]:.0f} / {cpu["player"]:.0f} / '
            f'{cpu["bench"]:.0f} | {"yes" if r["stride_engaged"] else "no"} ({r["skipped"]} skipped, '
            f'{r["dropped_queue_full"]} dropped, queue <= {r["queue_max"]:.0f}) | '
            + (f'{r["queries"]} ({r["query_ms"]:.0f}, {r["query_prepare_ms"]:.0f}) |' if r['queries'] else '- |')
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', nargs='+', default=list(RUNS), choices=list(RUNS))
    parser.add_argument('--minutes', type=float, default=2.0, help='measured window of each run')
    parser.add_argument('--warm-up-s', type=float, default=30.0, help='map growing before the window')
    parser.add_argument('--data', type=Path, default=KITCHEN, help='the 7-Scenes kitchen (or another folder)')
    parser.add_argument('--out', type=Path, default=REPO / 'out' / 'bench' / 'live')
    parser.add_argument('--json', type=Path, help='also write the results here')
    parser.add_argument(
        '-p',
        dest='overrides',
        action='append',
        default=[],
        metavar='NODE.PARAM=VALUE',
        help='a parameter of mapping_node, query_node or player, for every run',
    )
    args = parser.parse_args(argv)
    for override in args.overrides:
        key, _, value = override.partition('=')
        node_name, _, param = key.partition('.')
        if node_name not in NODE_PARAMS or not param:
            parser.error(f'-p {override}: expected mapping_node.X=V, query_node.X=V or player.X=V')
        NODE_PARAMS[node_name][param] = value
    if not args.data.exists():
        print(f'live: no data at {args.data}', file=sys.stderr)
        return 2
    print(f'live benchmark, {platform.node()}, {os.cpu_count()} cores; runs {args.runs}, {args.minutes:g} min each')
    from gpt4scene_ros.sim.tiny_models import make_tiny_vlm

    model = make_tiny_vlm(args.out / 'models' / 'qwen2-vl', 'qwen2-vl')
    results = []
    for name in args.runs:
        rclpy.init()
        node = rclpy.create_node(f'gpt4scene_live_{name}')
        executor = rclpy.executors.SingleThreadedExecutor()  # the multi-threaded one polls a core away
        executor.add_node(node)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        try:
            results.append(run(name, RUNS[name], args, model, node))
        finally:
            executor.shutdown()
            node.destroy_node()
            rclpy.try_shutdown()
        print_table(results[-1:])
    print('\nall runs:')
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == '__main__':
    sys.exit(main())
