"""``gpt4scene-export``: training samples for LLaMA-Factory made with the robot's own BEV and markers.

    gpt4scene-export --scans DIR --annotations FILE --benchmark B --out DIR [--frames 32]
                     [--markers both|frames|bev|none] [--size 512] [--stride N] [--max-frames N]
                     [-p mapping_node.PARAM=VALUE]

Writes ``gpt4scene_<B>.json`` (ShareGPT multimodal samples), ``dataset_info.json`` and ``images/`` into DIR
(:mod:`gpt4scene_ros.eval.export`). Exit code: 0 done, 2 bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from gpt4scene_ros.eval.benchmarks import BENCHMARKS, AnnotationError
from gpt4scene_ros.eval.export import MARKER_VARIANTS, export_benchmark
from gpt4scene_ros.eval.run import RunSettings
from gpt4scene_ros.query.prompts import PromptError
from gpt4scene_ros.tools.eval import EXIT_BAD_INPUT, EXIT_OK, apply_overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='gpt4scene-export', description=__doc__.splitlines()[0])
    parser.add_argument('--scans', required=True, type=Path, help='one folder per scene or episode id')
    parser.add_argument('--annotations', required=True, type=Path, help="the benchmark's question file")
    parser.add_argument('--benchmark', required=True, choices=BENCHMARKS)
    parser.add_argument('--out', required=True, type=Path)
    parser.add_argument('--frames', type=int, default=32, help='frames per sample after the BEV')
    parser.add_argument('--markers', choices=MARKER_VARIANTS, default='both', help='which images carry markers')
    parser.add_argument('--size', type=int, default=512, help='longest image side, pixels')
    parser.add_argument('--stride', type=int, default=1, help='fuse every n-th frame')
    parser.add_argument('--max-frames', type=int, default=0, help='fuse at most this many frames (0: all)')
    parser.add_argument('-p', dest='overrides', action='append', default=[], metavar='NODE.PARAM=VALUE')
    args = parser.parse_args(argv)
    if args.stride < 1 or args.max_frames < 0:
        parser.error('--stride must be >= 1 and --max-frames >= 0')
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    try:
        query, mapping, instances = apply_overrides(args.overrides)
        # Keyframes are chosen as the mapping node chooses them: at least as many as the samples show.
        instances = dataclasses.replace(instances, num_keyframes=max(instances.num_keyframes, args.frames))
        settings = RunSettings(
            args.benchmark,
            args.annotations,
            args.scans,
            args.out,
            query,
            mapping,
            instances,
            stride=args.stride,
            max_frames=args.max_frames,
        )
        summary, dataset = export_benchmark(settings, args.frames, args.markers, args.size)
    except (AnnotationError, PromptError, ValueError) as error:
        print(f'gpt4scene-export: {error}', file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps({'dataset': str(dataset), **dataclasses.asdict(summary)}, indent=1))
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
