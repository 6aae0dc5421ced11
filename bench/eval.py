"""The generated benchmark end to end: gpt4scene-eval with the ground-truth oracle and with the tiny random model,
and one exported training sample.

    python -P bench/eval.py [--rooms 3] [--frames 200] [--stride 1] [--benchmarks scanqa,scanrefer,...]

Rooms are generated with ``gpt4scene-make-scene --questions`` (varied seeds, clutter, chairs, turns; depth noise
on) into ``out/bench/eval/bench``; each benchmark is run with ``--oracle`` and with the tiny random Qwen2-VL
(``sim/tiny_models.py``) through the transformers backend, and the scores and the time per scene are printed. The
oracle's grounding scores measure what the map and the instances allow (ids, boxes and IoU agree end to end); the
tiny model's are near zero by construction (random weights), the path being the real one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gpt4scene_ros.sim.tiny_models import make_tiny_vlm  # noqa: E402
from gpt4scene_ros.tools.eval import main as eval_main  # noqa: E402
from gpt4scene_ros.tools.export import main as export_main  # noqa: E402
from gpt4scene_ros.tools.make_scene import main as make_scene  # noqa: E402

OUT = REPO / 'out' / 'bench' / 'eval'
ROOMS = [  # (seed, make-scene options): layouts, clutter, chair counts and turns vary
    (3, ['--clutter', 'standard']),
    (4, ['--clutter', 'none', '--chairs', '3', '--room-yaw', '25', '--furniture-yaw', '20']),
    (5, ['--clutter', 'heavy', '--chairs', '4', '--furniture-yaw', '30']),
    (6, ['--clutter', 'standard', '--chairs', '2', '--room-yaw', '-15']),
]
HEADLINE = {
    'scanqa': ('EM', 'EM_refined', 'BLEU-4', 'METEOR', 'ROUGE_L', 'CIDEr'),
    'scanrefer': ('Acc@0.25', 'Acc@0.5'),
    'multi3drefer': ('F1@0.25', 'F1@0.5'),
    'scan2cap': ('CIDEr@0.5', 'BLEU-4@0.5', 'CIDEr@0.25'),
}
ANNOTATIONS = {'scan2cap': 'scanrefer'}  # Scan2Cap reads ScanRefer's file


def make_bench(rooms: int, frames: int) -> Path:
    bench = OUT / 'bench'
    if bench.exists():
        shutil.rmtree(bench)
    for seed, options in ROOMS[:rooms]:
        sequence = OUT / 'rooms' / f'room{seed}'
        args = [str(sequence), '--seed', str(seed), '--frames', str(frames), *options, '--questions', str(bench)]
        if make_scene(args) != 0:
            raise SystemExit(f'make-scene failed for seed {seed}')
    return bench


def run(bench: Path, benchmark: str, name: str, extra: list[str], stride: int) -> dict:
    out = OUT / 'runs' / f'{benchmark}-{name}'
    if out.exists():
        shutil.rmtree(out)
    annotations = bench / f'{ANNOTATIONS.get(benchmark, benchmark)}.json'
    args = ['run', '--benchmark', benchmark, '--annotations', str(annotations), '--scans', str(bench / 'scans')]
    started = time.perf_counter()
    code = eval_main([*args, '--out', str(out), '--stride', str(stride), *extra])
    if code != 0:
        raise SystemExit(f'{benchmark} {name}: exit {code}')
    summary = json.loads((out / 'summary.json').read_text())
    scores = json.loads((out / 'scores.json').read_text())
    return {
        'scores': scores['scores'],
        'questions': scores['questions'],
        'scene_s': statistics.median(summary['scene_seconds'].values()),
        'total_s': time.perf_counter() - started,
        'out': out,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rooms', type=int, default=3)
    parser.add_argument('--frames', type=int, default=200)
    parser.add_argument('--stride', type=int, default=1)
    parser.add_argument('--benchmarks', default=','.join(HEADLINE))
    args = parser.parse_args()
    bench = make_bench(args.rooms, args.frames)
    tiny = make_tiny_vlm(OUT / 'tiny-qwen2-vl')
    model = [
        '-p',
        'query_node.backend=transformers',
        '-p',
        f'query_node.model={tiny}',
        '-p',
        'query_node.max_new_tokens=16',
    ]
    rows = []
    for benchmark in args.benchmarks.split(','):
        for name, extra in (('oracle', ['--oracle']), ('tiny model', model)):
            result = run(bench, benchmark, name.replace(' ', '-'), extra, args.stride)
            rows.append((benchmark, name, result))
    print(f'\ngenerated benchmark: {args.rooms} rooms, {args.frames} frames each (stride {args.stride}), {bench}\n')
    print('| benchmark | backend | questions | scores (%) | median s per scene (map + questions) |')
    print('|---|---|---|---|---|')
    for benchmark, name, result in rows:
        scores = result['scores']
        shown = ', '.join(f'{k} {scores[k]:.1f}' for k in HEADLINE[benchmark] if k in scores)
        print(f'| {benchmark} | {name} | {result["questions"]} | {shown} | {result["scene_s"]:.1f} |')
    export = OUT / 'export'
    if export.exists():
        shutil.rmtree(export)
    args_export = ['--scans', str(bench / 'scans'), '--annotations', str(bench / 'scanrefer.json')]
    if export_main([*args_export, '--benchmark', 'scanrefer', '--out', str(export)]) != 0:
        raise SystemExit('export failed')
    sample = json.loads((export / 'gpt4scene_scanrefer.json').read_text())[0]
    print(f'\nexported sample (of {export / "gpt4scene_scanrefer.json"}):')
    print(json.dumps({**sample, 'images': [*sample['images'][:3], '...', sample['images'][-1]]}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
