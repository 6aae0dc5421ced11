"""``gpt4scene-make-scene OUT_DIR``: write a procedural synthetic RGB-D sequence with ground truth.

Command line: ``gpt4scene-make-scene OUT_DIR [--seed N] [--frames N] [--no-noise] [--width W] [--height H]
[--clutter none|standard|heavy] [--chairs N] [--room-yaw DEG] [--furniture-yaw DEG]
[--bag FOLDER [--bag-storage mcap|sqlite3]] [--questions BENCH_DIR [--scene-id ID]]``.

The sequence is written by ``gpt4scene_ros.sim.writer.write_sequence`` (the
folder layout is described there); ``--bag`` also records it as a rosbag2 bag.
``--questions`` makes a benchmark of it for ``gpt4scene-eval``: the room in the
ScanNet export layout with its ground truth (``BENCH_DIR/scans/<scene id>``,
:mod:`gpt4scene_ros.sim.scannet_export`) and questions about its observed objects
(:mod:`gpt4scene_ros.sim.questions`) added to ``BENCH_DIR/scanqa.json``,
``scanrefer.json``, ``multi3drefer.json`` and ``openeqa.json`` (run it once per
room to gather several rooms in one benchmark).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from gpt4scene_ros.eval.scannet_truth import read_scannet_objects
from gpt4scene_ros.io.bags import write_bag
from gpt4scene_ros.io.open import open_sequence
from gpt4scene_ros.sim.questions import make_questions
from gpt4scene_ros.sim.scannet_export import write_scannet_scene
from gpt4scene_ros.sim.scene import CLUTTER_LEVELS, GROUND_TRUTH_FILE, SyntheticSceneConfig
from gpt4scene_ros.sim.writer import write_sequence


def write_benchmark(sequence_dir: Path, bench_dir: Path, scene_id: str) -> dict[str, int]:
    """The room of ``sequence_dir`` as ScanNet scene ``scene_id`` under ``bench_dir/scans`` and the questions
    about its observed objects added to the benchmark files (an earlier run's questions about the same scene
    replaced); the number of questions per file."""
    scene_dir = write_scannet_scene(sequence_dir, bench_dir / 'scans' / scene_id, scene_id)
    observed = {obj.object_id for obj in read_scannet_objects(scene_dir)}
    objects = json.loads((sequence_dir / GROUND_TRUTH_FILE).read_text())['objects']
    counts = {}
    for name, records in make_questions([o for o in objects if o['id'] in observed], scene_id).items():
        path = bench_dir / f'{name}.json'
        kept = json.loads(path.read_text()) if path.exists() else []
        scene_of = (lambda r: r['episode_history']) if name == 'openeqa' else (lambda r: r['scene_id'])
        merged = [r for r in kept if scene_of(r) != scene_id] + records
        path.write_text(json.dumps(merged, indent=1))
        counts[name] = len(records)
    return counts


def main(argv: list[str] | None = None) -> int:
    """Command-line entry ``gpt4scene-make-scene``; returns the exit code (2 for bad arguments)."""
    defaults = SyntheticSceneConfig()
    parser = argparse.ArgumentParser(
        prog='gpt4scene-make-scene',
        description='Write a procedural synthetic RGB-D sequence with ground truth in the 7-Scenes layout.',
    )
    parser.add_argument('out_dir', help='output folder (new, empty, or written by this tool before)')
    parser.add_argument('--seed', type=int, default=defaults.seed, help='layout, camera and noise seed')
    parser.add_argument('--frames', type=int, default=defaults.num_frames, help='number of frames')
    parser.add_argument('--no-noise', action='store_true', help='exact depth (no noise, no dropout)')
    parser.add_argument('--width', type=int, default=defaults.width, help='image width (field of view kept)')
    parser.add_argument('--height', type=int, default=defaults.height, help='image height (field of view kept)')
    parser.add_argument(
        '--clutter',
        choices=CLUTTER_LEVELS,
        default=defaults.clutter,
        help='none: objects stand apart; standard: flat, touching, stacked; heavy: more of each',
    )
    parser.add_argument('--chairs', type=int, default=defaults.num_chairs, help='chairs around the table (1-4)')
    parser.add_argument(
        '--room-yaw', type=float, default=defaults.room_yaw_deg, help='turn of the room about z, degrees'
    )
    parser.add_argument(
        '--furniture-yaw',
        type=float,
        default=defaults.furniture_yaw_deg,
        help='largest random yaw of chairs and floor objects, degrees',
    )
    parser.add_argument(
        '--bag',
        default='',
        metavar='FOLDER',
        help='also record the sequence as a rosbag2 bag here (topics as a RealSense driver names them)',
    )
    parser.add_argument('--bag-storage', choices=('mcap', 'sqlite3'), default='mcap')
    parser.add_argument(
        '--questions', default='', metavar='BENCH_DIR', help='also write the room and questions about it here'
    )
    parser.add_argument('--scene-id', default='', help='scene id in the benchmark (default scene<seed>_00)')
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the error
        return exc.code if isinstance(exc.code, int) else 2
    start = time.perf_counter()
    try:
        config = SyntheticSceneConfig(
            seed=args.seed,
            num_frames=args.frames,
            depth_noise=not args.no_noise,
            clutter=args.clutter,
            num_chairs=args.chairs,
            room_yaw_deg=args.room_yaw,
            furniture_yaw_deg=args.furniture_yaw,
        )
        if args.width <= 0 or args.height <= 0:
            raise ValueError(f'--width and --height must be positive, got {args.width}x{args.height}')
        if (args.width, args.height) != (config.width, config.height):
            config = config.with_resolution(args.width, args.height)
        if args.bag and Path(args.bag).exists():
            raise ValueError(f'--bag {args.bag}: already exists (rosbag2 writes a new folder)')
        scene = write_sequence(config, args.out_dir)
    except ValueError as exc:
        print(f'gpt4scene-make-scene: error: {exc}', file=sys.stderr)
        return 2
    print(
        f'wrote {config.num_frames} frames ({config.width}x{config.height}), {len(scene.objects)} objects '
        f'to {args.out_dir} in {time.perf_counter() - start:.1f} s'
    )
    if args.questions:
        scene_id = args.scene_id or f'scene{args.seed:04d}_00'
        try:
            counts = write_benchmark(Path(args.out_dir), Path(args.questions), scene_id)
        except (ValueError, OSError) as exc:
            print(f'gpt4scene-make-scene: error: --questions {args.questions}: {exc}', file=sys.stderr)
            return 2
        print(f'benchmark {args.questions}: scene {scene_id}, ' + ', '.join(f'{n} {k}' for k, n in counts.items()))
    if args.bag:
        frames = write_bag(open_sequence(args.out_dir), args.bag, storage=args.bag_storage)
        print(f'recorded {frames} frames as a rosbag2 bag ({args.bag_storage}) in {args.bag}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
