"""``gpt4scene-eval``: score predictions as the papers do, or run a benchmark through the robot's pipeline.

    gpt4scene-eval score --benchmark B --annotations FILE --predictions FILE --out SCORES.json [--scans DIR]
    gpt4scene-eval run   --benchmark B --annotations FILE --scans DIR --out DIR [-p query_node.backend=...]
                         [--oracle] [--frames N] [--workers N] [--shard i/N] [--stride N] [--max-frames N]
    gpt4scene-eval merge --benchmark B --annotations FILE [--scans DIR] --out DIR RUN_DIR [RUN_DIR ...]

B: scanqa, sqa3d, scanrefer, multi3drefer, scan2cap, openeqa. Grounding benchmarks need ``--scans`` (the
ground-truth boxes); openeqa is marked by a judge (``--judge-base-url``, ``--judge-model``,
``--judge-api-key-env``; ``run`` without one leaves the marks to ``score``).
Exit code: 0 done, 2 bad input (an annotation or predictions file that is not the benchmark's, a bad option).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.common.settings.mapping import MappingConfig
from gpt4scene_ros.common.settings.query import QueryConfig
from gpt4scene_ros.eval.benchmarks import BENCHMARKS, GROUNDING_BENCHMARKS, AnnotationError, read_questions
from gpt4scene_ros.eval.judge import Judge, JudgeSetupError
from gpt4scene_ros.eval.run import RunSettings, merge_runs, run_benchmark
from gpt4scene_ros.eval.scoring import read_ground_truth, read_predictions, score
from gpt4scene_ros.query.backends import VlmSetupError

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def apply_overrides(assignments: list[str]) -> tuple[QueryConfig, MappingConfig, InstanceConfig]:
    """``query_node.NAME=VALUE`` and ``mapping_node.NAME=VALUE`` (a field of the mapping or the instance
    settings); a value is read as YAML unless the setting is a string. ValueError naming a bad one."""
    groups = {'query_node': (QueryConfig,), 'mapping_node': (MappingConfig, InstanceConfig)}
    changes: dict[type, dict[str, Any]] = {QueryConfig: {}, MappingConfig: {}, InstanceConfig: {}}
    for assignment in assignments:
        target, equals, value = assignment.partition('=')
        node, _, name = target.partition('.')
        owner = next((c for c in groups.get(node, ()) if name in {f.name for f in dataclasses.fields(c)}), None)
        if not equals or owner is None:
            raise ValueError(
                f'-p {assignment}: expected NODE.PARAM=VALUE with a parameter of query_node or mapping_node '
                '(e.g. query_node.backend=openai)'
            )
        default = getattr(owner, name)
        try:
            changes[owner][name] = value if isinstance(default, str) else yaml.safe_load(value)
        except yaml.YAMLError:
            raise ValueError(f'-p {assignment}: {value!r} is not a value') from None
    return (
        QueryConfig(**changes[QueryConfig]),
        MappingConfig(**changes[MappingConfig]),
        InstanceConfig(**changes[InstanceConfig]),
    )


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in text.split('/'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r}: expected i/N, e.g. 0/4') from None
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f'{text!r}: expected 0 <= i < N')
    return index, count


def _judge(args: argparse.Namespace) -> Judge | None:
    """OpenEQA's judge; ``run`` and ``merge`` without one write the predictions and leave the marks for later
    (``score``, which needs it)."""
    if args.benchmark != 'openeqa':
        return None
    if args.command != 'score' and not args.judge_base_url:
        logging.getLogger('gpt4scene-eval').warning('no --judge-base-url: answers not marked (score them later)')
        return None
    return Judge(args.judge_base_url, args.judge_model, args.judge_api_key_env)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='gpt4scene-eval', description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    for name in ('score', 'run', 'merge'):
        command = commands.add_parser(name)
        command.add_argument('--benchmark', required=True, choices=BENCHMARKS)
        command.add_argument('--annotations', required=True, type=Path, help="the benchmark's question file")
        command.add_argument('--out', required=True, type=Path)
        command.add_argument(
            '--scans', type=Path, required=name == 'run', help='one folder per scene or episode id (ground truth)'
        )
        command.add_argument('--judge-base-url', default='', help='openeqa: the judge, an OpenAI-compatible server')
        command.add_argument('--judge-model', default='', help='openeqa: the model the judge server serves')
        command.add_argument(
            '--judge-api-key-env', default='', help='openeqa: NAME of the variable holding the judge API key'
        )
        if name == 'score':
            command.add_argument('--predictions', required=True, type=Path)
        if name == 'run':
            command.add_argument('-p', dest='overrides', action='append', default=[], metavar='NODE.PARAM=VALUE')
            command.add_argument('--oracle', action='store_true', help='a ground-truth oracle instead of the VLM')
            command.add_argument('--frames', type=int, default=0, help='keyframes per question (0: the default)')
            command.add_argument('--workers', type=int, default=1, help='scenes in parallel processes')
            command.add_argument('--shard', type=_shard, default=(0, 1), metavar='i/N', help='this job of N')
            command.add_argument('--stride', type=int, default=1, help='fuse every n-th frame')
            command.add_argument('--max-frames', type=int, default=0, help='fuse at most this many frames (0: all)')
        if name == 'merge':
            command.add_argument('runs', nargs='+', type=Path, help='the run folders of the shards')
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    try:
        if args.command == 'score':
            result = _score(args)
        elif args.command == 'run':
            if args.workers < 1 or args.stride < 1 or args.max_frames < 0 or args.frames < 0:
                parser.error('--workers and --stride must be >= 1, --max-frames and --frames >= 0')
            query, mapping, instances = apply_overrides(args.overrides)
            settings = RunSettings(
                args.benchmark,
                args.annotations,
                args.scans,
                args.out,
                query,
                mapping,
                instances,
                args.oracle,
                args.stride,
                args.max_frames,
                args.frames,
            )
            result = run_benchmark(settings, args.workers, args.shard, _judge(args))
        else:
            result = merge_runs(args.out, args.runs, args.benchmark, args.annotations, args.scans, _judge(args))
    except (AnnotationError, JudgeSetupError, VlmSetupError, ValueError) as error:
        print(f'gpt4scene-eval: {error}', file=sys.stderr)
        return EXIT_BAD_INPUT
    shown = {k: v for k, v in result.items() if k not in ('marks', 'records', 'unknown_question_ids')}
    print(json.dumps(shown, indent=1))
    return EXIT_OK


def _score(args: argparse.Namespace) -> dict:
    questions = read_questions(args.benchmark, args.annotations)
    predictions = read_predictions(args.predictions)
    truth = None
    if args.benchmark in GROUNDING_BENCHMARKS:
        if args.scans is None:
            raise ValueError(f'{args.benchmark} needs --scans: the scenes whose ground-truth boxes score the boxes')
        truth = read_ground_truth(args.scans, [q.scene_id for q in questions])
    marks = {}
    if args.out.exists() and args.benchmark == 'openeqa':  # a rerun asks the judge only about the unmarked
        try:
            marks = json.loads(args.out.read_text()).get('marks', {})
        except (json.JSONDecodeError, AttributeError):
            marks = {}
    result = score(args.benchmark, questions, predictions, truth, judge=_judge(args), marks=marks)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == '__main__':
    sys.exit(main())
