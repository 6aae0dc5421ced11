"""``./scripts/demo``: the whole loop on one sequence, ending in an HTML report.

    python -m gpt4scene_ros.tools.demo [DATA] [--out DIR] [--model PATH|ID] [--params-file FILE ...]
                                     [-p NODE.PARAM=VALUE ...] [--frames N] [--timeout S]

DATA is a recorded folder (ScanNet, OpenEQA, 7-Scenes, TUM) or a rosbag2 bag (its topics:
``-p player.color_topic=...``, see docs/parameters.md). Without DATA it generates the synthetic demo scene
(cached in ``DIR/scene``). It builds
the tiny random Qwen2-VL (cached in ``DIR/models``) unless ``--model`` or a ``--params-file`` names a model,
starts the graph with ``gpt4scene-bringup`` (its output goes to ``DIR/graph.log``), plays the sequence in
real time with a progress bar, waits for the object instances, asks one question of every SceneQuery task
and writes ``DIR/report.html`` (self-contained: images embedded, nothing fetched when it is opened) and
``DIR/overview.jpg`` (the marked BEV and a marked keyframe: the README's picture).

Exit code: 0 when the report was written, 1 when the graph failed (a node died, no map, no answer),
2 for bad arguments or input (no such sequence, an output folder that cannot be written), 130 when
interrupted (Ctrl-C or SIGTERM): the graph is stopped and no process is left behind.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tqdm import tqdm

from gpt4scene_ros.io.bags import BagTopics
from gpt4scene_ros.io.open import open_sequence
from gpt4scene_ros.io.sequence import SequenceError
from gpt4scene_ros.objects.tags import object_tag
from gpt4scene_ros.tools.report import (
    ReportContext,
    ReportError,
    ReportQuestion,
    check_writable_dir,
    write_overview,
    write_report,
)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
DEMO_SCENE_SEED = 0
DEMO_SCENE_FRAMES = 300


class DemoFailed(RuntimeError):
    """The graph did not get as far as a report (the message says where it stopped)."""


def prepare_scene(folder: Path) -> Path:
    """The synthetic demo scene in ``folder``, generated on the first run only."""
    from gpt4scene_ros.sim.scene import SyntheticSceneConfig
    from gpt4scene_ros.sim.writer import write_sequence

    marker = folder / 'instances.json'
    if not marker.is_file() or len(list(folder.glob('frame-*.depth.png'))) < DEMO_SCENE_FRAMES:
        print(f'demo: generating the synthetic scene into {folder} (once)', flush=True)
        write_sequence(SyntheticSceneConfig(seed=DEMO_SCENE_SEED, num_frames=DEMO_SCENE_FRAMES), folder)
    return folder


def prepare_tiny_model(folder: Path) -> Path:
    """The tiny random Qwen2-VL in ``folder`` (built from a config, nothing downloaded), on the first run only."""
    if not (folder / 'config.json').is_file():
        print(f'demo: building the tiny random Qwen2-VL into {folder} (once)', flush=True)
        from gpt4scene_ros.sim.tiny_models import make_tiny_vlm

        make_tiny_vlm(folder)
    return folder


def bag_topics_of(overrides) -> BagTopics:
    """The bag topics the player will read, from ``-p player.color_topic=...`` style overrides."""
    given = {}
    for item in overrides:
        key, _, value = item.partition('=')
        role = key.removeprefix('player.').removesuffix('_topic')
        roles = ('color', 'depth', 'camera_info', 'odometry')
        if key.startswith('player.') and key.endswith('_topic') and role in roles:
            given[role] = value
    return BagTopics(**given)


def demo_questions(instances) -> list:
    """One request of every task: (task, question, situation, object_ids)."""
    largest = max(instances, key=lambda i: i.num_points) if instances else None
    questions = [
        ('objects', '', '', ()),
        ('qa', 'Where is the table?', '', ()),
        ('qa', 'What is on my left?', 'I am standing by the door, facing the middle of the room.', ()),
        ('ground', 'the chair closest to the table', '', ()),
        ('multi_ground', 'all the chairs in the room', '', ()),
    ]
    if largest is not None:
        questions.append(('caption', '', '', (largest.id,)))
    return questions


class GraphOutput:
    """Copies the graph's output to a log file and notes the events the demo waits for."""

    def __init__(self, process: subprocess.Popen, log_path: Path):
        self.player_done = threading.Event()
        self.failure = ''
        self._thread = threading.Thread(target=self._read, args=(process, log_path), daemon=True)
        self._thread.start()

    def _read(self, process, log_path):
        with open(log_path, 'w', encoding='utf-8') as log:
            for line in process.stdout:
                log.write(line)
                log.flush()
                if 'player finished its sequence' in line:
                    self.player_done.set()
                elif 'exited with code' in line and not self.failure:
                    self.failure = line.strip()


def _graph_command(data: Path, args, model: str) -> list:
    command = [sys.executable, '-P', '-m', 'gpt4scene_ros.tools.bringup', '--data', str(data)]
    for params_file in args.params_files:
        command += ['--params-file', params_file]
    overrides = ['player.wait_for_subscribers=1']
    if args.frames:
        overrides.append(f'player.max_frames={args.frames}')
    if model:
        overrides += ['query_node.backend=transformers', f'query_node.model={model}']
        if not args.params_files:
            overrides.append('query_node.device=cpu')
    for item in overrides + list(args.overrides):
        command += ['-p', item]
    return command


def _stop_graph(process: subprocess.Popen):
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_graph(data: Path, frames_total: int, args, model: str, out_dir: Path, timings: dict, counts: dict):
    """Play ``data`` through the graph and ask it; returns (snapshot, [ReportQuestion])."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from gpt4scene_ros.msg import SceneSnapshot
    from gpt4scene_ros.ros.conversions.scene import instance_from_msg, snapshot_from_msg
    from gpt4scene_ros.ros.qos import LATCHED
    from gpt4scene_ros.ros.service_client import ServiceCallError, call_service
    from gpt4scene_ros.srv import SceneQuery

    env = dict(os.environ, PYTHONUNBUFFERED='1')
    started = time.monotonic()
    graph = subprocess.Popen(
        _graph_command(data, args, model), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    output = GraphOutput(graph, out_dir / 'graph.log')
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)  # Ctrl-C is ours: the graph is stopped first
    node = rclpy.create_node('gpt4scene_demo')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    mapping_values = {}
    snapshots = []

    def on_diagnostics(msg):
        for status in msg.status:
            if status.name == 'gpt4scene_ros: mapping':
                mapping_values.update({kv.key: kv.value for kv in status.values})

    def on_snapshot(msg):
        snapshots.append((time.monotonic(), msg))
        del snapshots[:-2]

    node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 10)
    node.create_subscription(SceneSnapshot, 'mapping_node/scene_snapshot', on_snapshot, LATCHED)
    client = node.create_client(SceneQuery, 'query_node/scene_query')

    def check_graph(what: str):
        if graph.poll() is not None or output.failure:
            raise DemoFailed(
                f'the graph stopped {what}: {output.failure or f"exit code {graph.returncode}"} '
                f'(log: {out_dir / "graph.log"})'
            )

    def spin_until(condition, timeout_s: float, what: str):
        deadline = time.monotonic() + timeout_s
        while not condition():
            check_graph(what)
            if time.monotonic() > deadline:
                raise DemoFailed(f'timed out after {timeout_s:.0f} s {what} (log: {out_dir / "graph.log"})')
            executor.spin_once(timeout_sec=0.1)

    def received() -> int:
        return int(mapping_values.get('frames_received', 0))

    try:
        spin_until(lambda: received() > 0, args.timeout, 'before the first frame reached the mapping node')
        timings['start the graph (to the first frame)'] = time.monotonic() - started
        play_started = time.monotonic()
        if not sys.stderr.isatty():
            print(f'demo: playing {frames_total} frames (no progress bar: stderr is not a terminal)', flush=True)
        with tqdm(total=frames_total, unit='frame', desc='playing', file=sys.stderr, disable=None) as bar:

            def played():
                bar.update(min(frames_total, received()) - bar.n)
                bar.set_postfix(
                    integrated=mapping_values.get('frames_integrated', 0),
                    objects=mapping_values.get('instances', 0),
                    refresh=False,
                )
                return output.player_done.is_set()

            spin_until(played, args.timeout, 'while playing the sequence')
        player_done_at = time.monotonic()
        timings['play the sequence (real time)'] = player_done_at - play_started
        # The mapping node integrates what it still holds, then the object layer updates until it has used every
        # keyframe candidate: settled when a snapshot came after the last frame and, in diagnostics sent after that
        # snapshot, the map stopped growing and no candidate waits.
        settled = {}

        def objects_settled():
            if not (snapshots and snapshots[-1][0] > player_done_at and snapshots[-1][1].instances):
                return False
            if settled.get('snapshot_at') != snapshots[-1][0]:
                settled.update(snapshot_at=snapshots[-1][0])
                mapping_values.clear()
                return False
            if 'keyframe_candidates_waiting' not in mapping_values:
                return False
            return mapping_values['keyframe_candidates_waiting'] == '0' and mapping_values.get('map_version') == str(
                snapshots[-1][1].map_version
            )

        spin_until(
            objects_settled, min(args.timeout, 120.0), 'waiting for the object instances to settle after the last frame'
        )
        snapshot_msg = snapshots[-1][1]
        snapshot = snapshot_from_msg(snapshot_msg)
        timings['wait for the final objects'] = time.monotonic() - player_done_at
        counts.update(
            {
                'frames in the sequence': frames_total,
                'frames received': received(),
                'frames integrated': mapping_values.get('frames_integrated', 0),
                'frames received per frame integrated': round(
                    received() / max(1, int(mapping_values.get('frames_integrated', 0))), 2
                ),
                'keyframe candidates': mapping_values.get('keyframe_candidates', 0),
                'keyframe candidates dropped': mapping_values.get('keyframe_candidates_dropped', 0),
                'objects': len(snapshot.instances),
                'keyframes': len(snapshot.keyframes),
            }
        )
        spin_until(client.service_is_ready, 60.0, 'waiting for the query service')
        asked_at = time.monotonic()
        answers = []
        for task, question, situation, ids in demo_questions(snapshot.instances):
            request = SceneQuery.Request(task=task, question=question, situation=situation, object_ids=list(ids))
            sent = time.monotonic()
            try:  # a request sent right after discovery can lose its response: asked again after 120 s, twice
                response = call_service(
                    client,
                    request,
                    3 * 120.0,
                    resend_s=120.0,
                    executor=executor,
                    check=lambda task=task: check_graph(f'waiting for the answer to a {task} query'),
                )
            except DemoFailed:
                if graph.poll() is not None:
                    raise
                raise DemoFailed(f'no answer to the {task} query') from None
            except ServiceCallError:
                raise DemoFailed(f'no answer to the {task} query') from None
            answers.append(
                ReportQuestion(
                    task=task,
                    question=question,
                    situation=situation,
                    object_ids_asked=tuple(ids),
                    success=response.success,
                    answer=response.answer,
                    message=response.message,
                    instances=tuple(instance_from_msg(m) for m in response.instances),
                    round_trip_ms=(time.monotonic() - sent) * 1000.0,
                    prepare_ms=response.prepare_ms,
                    model_ms=response.model_ms,
                )
            )
            shown = response.answer if response.success else f'refused: {response.message}'
            named = ' '.join(object_tag(i) for i in response.object_ids)
            print(
                f'demo: {task:<12} {question or situation or ""!s:<34.34} -> {shown[:60]!r}'
                + (f' [{named}]' if named else ''),
                flush=True,
            )
        timings[f'ask {len(answers)} questions'] = time.monotonic() - asked_at
        return snapshot, answers
    finally:
        _stop_graph(graph)
        node.destroy_node()
        rclpy.shutdown()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='demo', description=__doc__.splitlines()[0])
    parser.add_argument(
        'data',
        nargs='?',
        default='',
        help='recorded folder (ScanNet, OpenEQA, 7-Scenes, TUM) or rosbag2 bag (default: the synthetic demo scene)',
    )
    parser.add_argument('--out', default='out/demo', help='output folder (default out/demo)')
    parser.add_argument(
        '--model',
        default='',
        help='local transformers model folder or hub id '
        '(default: the tiny random Qwen2-VL, unless a --params-file sets the backend)',
    )
    parser.add_argument(
        '--params-file',
        dest='params_files',
        action='append',
        default=[],
        help='parameters for gpt4scene-bringup (e.g. config/vlm/vllm.yaml); repeat to overlay',
    )
    parser.add_argument('-p', dest='overrides', action='append', default=[], metavar='NODE.PARAM=VALUE')
    parser.add_argument('--frames', type=int, default=0, help='frames to play (0: all)')
    parser.add_argument('--timeout', type=float, default=600.0, help='give up a stage after this many seconds')
    args = parser.parse_args(argv)
    if args.frames < 0 or args.timeout <= 0:
        parser.error('--frames must be >= 0 and --timeout > 0')

    interrupted = []

    def on_signal(signum, frame):  # SIGTERM stops the graph as Ctrl-C does
        interrupted.append(signum)
        raise KeyboardInterrupt

    # Remembered too: Ctrl-C reaches the graph's processes as well, and the graph stopping by it may be seen first.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    timings, counts = {}, {}
    started = time.monotonic()
    try:
        out_dir = check_writable_dir(args.out)
        data = Path(args.data) if args.data else prepare_scene(out_dir / 'scene')
        try:
            sequence = open_sequence(str(data), bag_topics=bag_topics_of(args.overrides))
            frames_total = min(args.frames or len(sequence), len(sequence))
            sequence.close()  # only checked and counted here: the player opens it again
        except SequenceError as error:
            print(f'demo: {error}', file=sys.stderr)
            return EXIT_BAD_INPUT
        for params_file in args.params_files:
            if not Path(params_file).is_file():
                print(f'demo: --params-file {params_file}: no such file', file=sys.stderr)
                return EXIT_BAD_INPUT
        uses_tiny = not args.model and not args.params_files
        model = args.model or (str(prepare_tiny_model(out_dir / 'models' / 'qwen2-vl')) if uses_tiny else '')
        timings['prepare (scene, model)'] = time.monotonic() - started
        snapshot, answers = run_graph(data, frames_total, args, model, out_dir, timings, counts)
        context = ReportContext(
            source=str(data),
            backend='transformers' if model else 'from the params files',
            model=model,
            model_is_random=uses_tiny,
            timings_s=timings,
            counts=counts,
        )
        timings['total'] = time.monotonic() - started
        report = write_report(out_dir / 'report.html', snapshot, answers, context)
        write_overview(out_dir / 'overview.jpg', snapshot)
    except ReportError as error:
        print(f'demo: {error}', file=sys.stderr)
        return EXIT_BAD_INPUT
    except (DemoFailed, KeyboardInterrupt) as error:
        if isinstance(error, DemoFailed) and not interrupted:  # a graph stopped by our signal is an interruption
            print(f'demo: {error}', file=sys.stderr)
            return EXIT_FAILED
        print('demo: interrupted; the graph is stopped', file=sys.stderr)
        return EXIT_INTERRUPTED
    answered = sum(1 for a in answers if a.success)
    print(
        f'demo: {counts.get("frames integrated")} of {frames_total} frames integrated, '
        f'{len(snapshot.instances)} objects, {answered} of {len(answers)} questions answered in '
        f'{timings["total"]:.0f} s'
    )
    if uses_tiny:
        print('demo: the answers come from a tiny random model (random text); see the report for a real one')
    print(f'demo: report: {report.resolve()}')
    return EXIT_OK if answered == len(answers) else EXIT_FAILED


if __name__ == '__main__':
    sys.exit(main())
