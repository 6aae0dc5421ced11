"""SceneQuery benchmark: prompt preparation, model input tokens, the service round trip with the tiny model (both
backends), and the mapping node's integrated-frame rate while queries run.

    source scripts/env.sh && python -P bench/query.py [--seconds 40] [--kitchen DIR] [--no-node]

1. Prepare: a SceneSnapshot message of a furnished room (``--objects``, 30 by default: markers on a 512x410
   BEV, a dozen on each of 32 keyframes 640x480 JPEG) is decoded (once per snapshot in the node); then, per
   query, BEV + 8 and BEV + 32 keyframes are fitted to 512 px on the patch grid with their markers drawn (once
   per snapshot and size: the first query of a snapshot pays for it) and run through the Qwen2-VL image
   processor (patch 14, merge 2: the real model's settings, here in the tiny model's processor).
2. Tokens: model input tokens and the share taken by the images, for 8 and 32 keyframes.
3. Round trip: gpt4scene-ask's path (a SceneQuery client in this process) to a query node with the tiny
   Qwen2-VL, through transformers and through the OpenAI-compatible backend (a local HTTP server).
4. Mapping rate: player (kitchen, realtime 30 Hz) + mapping node + query node (tiny model); integrated frames
   per second without queries, then with one query after the other.
"""

from __future__ import annotations

import argparse
import dataclasses
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
for extra in (REPO / 'test', REPO / 'test' / 'core', REPO / 'scripts', REPO / 'bench'):
    sys.path.insert(0, str(extra))

import rclpy  # noqa: E402
import rclpy.executors  # noqa: E402
from chat_server import ChatServer  # noqa: E402
from instances_node import KITCHEN, Diagnostics, executable  # noqa: E402
from scene_fixtures import make_snapshot  # noqa: E402

from gpt4scene_ros.msg import SceneSnapshot  # noqa: E402
from gpt4scene_ros.query.backends.local_transformers import TransformersBackend  # noqa: E402
from gpt4scene_ros.query.prompts import PromptTemplates, build_prompt  # noqa: E402
from gpt4scene_ros.ros.conversions.scene import snapshot_from_msg, snapshot_to_msg  # noqa: E402
from gpt4scene_ros.ros.qos import LATCHED  # noqa: E402
from gpt4scene_ros.sim.tiny_models import make_tiny_vlm  # noqa: E402
from gpt4scene_ros.srv import SceneQuery  # noqa: E402

TEMPLATES = PromptTemplates.from_yaml(REPO / 'config' / 'prompts.yaml')


def median_ms(function, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times), float(np.percentile(times, 95))


def decode_ms(message) -> tuple[float, float]:
    """Decoding a snapshot message: the query node does it once, when a new snapshot arrives."""
    return median_ms(lambda: snapshot_from_msg(message), 15)


def prepare_and_tokens(backend: TransformersBackend, snapshot):
    """Per query, as the node runs it: the prompt (keyframes chosen, fitted to 512 px on the processor's patch
    grid, markers drawn: once per snapshot and size, from the snapshot's cache) and the processor (chat
    template, image patches, tokens). ``first``: the first query after a snapshot arrived (nothing drawn
    yet); ``later``: the queries after it."""
    rows = []
    for frames in (8, 32):

        def prepare(fresh: bool):
            # dataclasses.replace: the same snapshot with an empty image cache, as a new one arrives.
            shown = dataclasses.replace(snapshot) if fresh else snapshot
            prompt = build_prompt(
                shown,
                'Where is the mug? Answer the question using a single word or phrase.',
                frames,
                TEMPLATES,
                size_multiple=backend.image_size_multiple,
            )
            return backend.preprocess(prompt)

        inputs = prepare(True)
        total, images = backend.token_counts(inputs)
        first = median_ms(lambda: prepare(True), 15)
        later = median_ms(lambda: prepare(False), 15)
        rows.append((frames, *first, *later, total, images))
    return rows


class Client:
    def __init__(self):
        rclpy.init()
        self.node = rclpy.create_node('bench_query')
        self.executor = rclpy.executors.MultiThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.publisher = self.node.create_publisher(SceneSnapshot, 'mapping_node/scene_snapshot', LATCHED)
        self.client = self.node.create_client(SceneQuery, 'query_node/scene_query')
        self.diagnostics = Diagnostics(self.node)

    def ask(self, timeout_s=120.0, **fields):
        deadline = time.monotonic() + timeout_s
        while not self.client.service_is_ready():
            if time.monotonic() > deadline:
                raise RuntimeError('no query node')
            time.sleep(0.05)
        while True:
            future = self.client.call_async(SceneQuery.Request(**fields))
            end = min(deadline, time.monotonic() + 20.0)
            while not future.done() and time.monotonic() < end:
                time.sleep(0.002)
            if future.done():
                return future.result()
            self.client.remove_pending_request(future)
            if time.monotonic() > deadline:
                raise RuntimeError('no answer')

    def close(self):
        self.executor.shutdown()
        self.thread.join(timeout=5)
        self.node.destroy_node()
        rclpy.shutdown()


def start(name, params, log_dir):
    args = [executable(name), '--ros-args']
    for key, value in params.items():
        args += ['-p', f'{key}:={str(value).lower() if isinstance(value, bool) else value}']
    log = open(log_dir / f'{name}.log', 'w')
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, 'PYTHONUNBUFFERED': '1'})


def stop(*processes):
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def round_trips(client: Client, query_params: dict, log_dir: Path, runs: int = 15):
    node = start('query_node', {**query_params, 'max_queries_per_minute': 0}, log_dir)
    try:
        client.publisher.publish(snapshot_to_msg(make_snapshot(num_keyframes=10), 'odom'))
        deadline = time.monotonic() + 120
        while list(client.ask(task='objects').object_ids) != [3, 7, 12]:
            if time.monotonic() > deadline:
                raise RuntimeError('the query node never got the snapshot')
            time.sleep(0.2)
        client.ask(task='qa', question='Warm up.')
        times, prepare, model = [], [], []
        for _ in range(runs):
            started = time.perf_counter()
            response = client.ask(task='qa', question='Where is the mug?', num_frames=8)
            times.append((time.perf_counter() - started) * 1000.0)
            assert response.success, response.message
            prepare.append(response.prepare_ms)
            model.append(response.model_ms)
        return (
            statistics.median(times),
            float(np.percentile(times, 95)),
            statistics.median(prepare),
            statistics.median(model),
        )
    finally:
        stop(node)


WITHOUT, WITH, CONTROL = 'without queries', 'with queries', 'one busy core, no queries (control)'


def mapping_rate_with_queries(client: Client, model: str, seconds: float, log_dir: Path):
    mapping = start('mapping_node', {'diagnostics_period_s': 1.0}, log_dir)
    query = start(
        'query_node',
        {'backend': 'transformers', 'model': model, 'device': 'cpu', 'max_new_tokens': 32, 'max_queries_per_minute': 0},
        log_dir,
    )
    player = start(
        'player', {'data_dir': str(KITCHEN), 'loop': True, 'rate_hz': 30.0, 'wait_for_subscribers': 1}, log_dir
    )
    try:
        deadline = time.monotonic() + 60
        while client.diagnostics.get().get('frames_received', 0) < 30:
            if time.monotonic() > deadline:
                raise RuntimeError('no frames at the mapping node')
            time.sleep(0.2)
        time.sleep(40.0)  # past the first loop of the data, while the map is still growing
        results = []
        # Alternated, so that a drift shows; the control keeps one core busy without queries, which separates the
        # queries' cost from what a loaded machine does to the node (a VM's idle cores wake up slowly).
        for phase in (WITHOUT, WITH, CONTROL) * 2:
            spinner = subprocess.Popen([sys.executable, '-c', 'while True: pass']) if phase == CONTROL else None
            start_values, t0 = client.diagnostics.get(), time.monotonic()
            answered = 0
            while time.monotonic() - t0 < seconds:
                if phase == WITH:
                    response = client.ask(task='qa', question='Where is the table?', num_frames=8)
                    answered += int(response.success)
                else:
                    time.sleep(0.5)
            end_values, t1 = client.diagnostics.get(), time.monotonic()
            if spinner is not None:
                spinner.kill()
                spinner.wait()
            rate = (end_values.get('frames_integrated', 0) - start_values.get('frames_integrated', 0)) / (t1 - t0)
            received = (end_values.get('frames_received', 0) - start_values.get('frames_received', 0)) / (t1 - t0)
            results.append((phase, received, rate, answered))
        return results
    finally:
        stop(player, query, mapping)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=30.0, help='each of the six mapping phases')
    parser.add_argument('--mapping-only', action='store_true', help='only the mapping-rate part')
    parser.add_argument('--kitchen', type=Path, default=KITCHEN)
    parser.add_argument('--no-node', action='store_true', help='skip the mapping-rate part')
    parser.add_argument('--objects', type=int, default=30, help='objects in the snapshot (markers on the images)')
    args = parser.parse_args(argv)
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    log_dir = REPO / 'out' / 'bench' / 'query'
    log_dir.mkdir(parents=True, exist_ok=True)
    models = Path(tempfile.mkdtemp(prefix='gpt4scene_tiny_'))
    model = str(make_tiny_vlm(models / 'qwen2-vl', 'qwen2-vl'))
    backend = TransformersBackend(model, device='cpu', max_new_tokens=16)
    print(f'\nSceneQuery benchmark, {platform.node()}, {os.cpu_count()} cores, no GPU\n')
    if not args.mapping_only:
        message = snapshot_to_msg(make_snapshot(num_keyframes=32, num_objects=args.objects), 'odom')
        decode_median, decode_p95 = decode_ms(message)
        print(
            f'snapshot message (BEV 512x410 with {args.objects} markers + 32 keyframes 640x480 JPEG with 12 markers '
            f'each) decoded on arrival: median {decode_median:.1f} ms, p95 {decode_p95:.1f} ms\n'
        )
        print(
            '| keyframes | prepare, nothing prepared yet: median ms | p95 ms | prepared on arrival, and later queries: '
            'median ms | p95 ms | input tokens | image tokens | image share |'
        )
        print('|---|---|---|---|---|---|---|---|')
        for frames, first, first_p95, later, later_p95, total, images in prepare_and_tokens(
            backend, snapshot_from_msg(message)
        ):
            print(
                f'| BEV + {frames} | {first:.1f} | {first_p95:.1f} | {later:.1f} | {later_p95:.1f} | {total} | '
                f'{images} | {images / total:.1%} |'
            )
    client = Client()
    try:
        if not args.mapping_only:
            print('\n| backend | round trip median ms | p95 ms | prepare median ms | model median ms |')
            print('|---|---|---|---|---|')
            row = round_trips(
                client, {'backend': 'transformers', 'model': model, 'device': 'cpu', 'max_new_tokens': 16}, log_dir
            )
            print(
                f'| transformers (tiny Qwen2-VL, 16 new tokens) | {row[0]:.0f} | {row[1]:.0f} | {row[2]:.0f} | '
                f'{row[3]:.0f} |'
            )
            server = ChatServer(backend)
            try:
                row = round_trips(
                    client,
                    {'backend': 'openai', 'base_url': server.base_url, 'model': 'tiny', 'max_new_tokens': 16},
                    log_dir,
                )
            finally:
                server.close()
            print(
                f'| openai (HTTP, local server with the same model) | {row[0]:.0f} | {row[1]:.0f} | {row[2]:.0f} | '
                f'{row[3]:.0f} |'
            )
        if not args.no_node and (args.kitchen / 'camera-intrinsics.txt').exists():
            results = mapping_rate_with_queries(client, model, args.seconds, log_dir)
            print('\n| mapping node, kitchen at 30 Hz | received /s | integrated /s | queries answered |')
            print('|---|---|---|---|')
            for phase, received, rate, answered in results:
                print(f'| {phase} | {received:.1f} | {rate:.1f} | {answered} |')
            mean_rate = {
                name: statistics.mean(rate for phase, _, rate, _ in results if phase == name)
                for name in (WITHOUT, WITH, CONTROL)
            }
            print(
                f'\nintegrated rate, means of the phases: with / without queries '
                f'{mean_rate[WITH] / max(mean_rate[WITHOUT], 1e-9):.3f}, with queries / control '
                f'{mean_rate[WITH] / max(mean_rate[CONTROL], 1e-9):.3f}'
            )
    finally:
        client.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
