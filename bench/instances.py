"""Object instances, markers and keyframes scored on generated scenes with ground truth, and on the real kitchen.

    python -P bench/instances.py [--quick] [--scenes NAME,...] [--set key=value ...] [--no-kitchen]

Each generated scene is fused frame by frame exactly as ``gpt4scene-process``
does (instances updated every 60 integrated frames, as the mapping node does
every 2 s at 30 Hz), and scored at the end of its 300 frames against the
generator's ground truth: precision and recall at 3D IoU 0.25 and 0.5 (oriented
boxes), recall at 0.5 of objects under 15 cm, marker correctness (the keyframe
marker's pixel lies on the true mask of the object its ID was matched to), ID
switches over the updates, new IDs per 100 frames once the room is covered
(after the first update whose map holds 90 % of the final surface; all of
them, and those left when the first IDs of objects not yet in the map at the
update before are left out: an object that enters the map late gets its ID
at the next update, a first sighting rather than churn), keyframe
coverage of the coverage selection and of uniform sampling from the same
candidates, and the update time. The frames are then played again, a revisit
of the mapped room: its ID switches and new IDs per 100 frames are counted
too. Scenes are generated once into ``out/bench/scenes`` (about 15 s each).

On the 7-Scenes kitchen (../shared/data, skipped when absent), its 1000 frames
played twice (the second pass revisits the mapped room): the number of
instances, how many IDs seen at frame 500 are still there at frame 1000, the
new IDs of the revisit and the IDs it keeps, the
marked BEV and keyframes saved under ``out/bench/kitchen`` (look at them), and,
with the hand annotation ``bench/data/redkitchen_objects.json``, how many of
its clearly separate objects are found at IoU >= 0.25 and their ID switches
over the updates of each pass.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gpt4scene_ros.common.settings.instances import InstanceConfig  # noqa: E402
from gpt4scene_ros.common.settings.mapping import MappingConfig  # noqa: E402
from gpt4scene_ros.common.settings.query import QueryConfig  # noqa: E402
from gpt4scene_ros.io.open import open_sequence  # noqa: E402
from gpt4scene_ros.mapping.gravity import estimate_gravity_alignment  # noqa: E402
from gpt4scene_ros.objects.evaluation import (  # noqa: E402
    IdHistory,
    keyframe_coverage,
    load_truth,
    marker_correctness,
    match_instances,
    observed_truth,
)
from gpt4scene_ros.objects.offline import process_sequence  # noqa: E402
from gpt4scene_ros.query.prompts import first_ranked  # noqa: E402
from gpt4scene_ros.sim.masks import CLEAN, MaskDegradation, write_sam_like_masks  # noqa: E402
from gpt4scene_ros.sim.scene import SyntheticSceneConfig  # noqa: E402
from gpt4scene_ros.sim.writer import write_sequence  # noqa: E402

KITCHEN = REPO.parent / 'shared' / 'data' / '7scenes-redkitchen'
KITCHEN_ANNOTATION = REPO / 'bench' / 'data' / 'redkitchen_objects.json'
OUT = REPO / 'out' / 'bench'

# name: (condition, generator settings). Layouts, room sizes and turns, chair counts and seeds all vary.
SCENES = {
    'clean-a': ('clean', dict(seed=11, clutter='none', depth_noise=False)),
    'clean-b': (
        'clean',
        dict(
            seed=12,
            clutter='none',
            depth_noise=False,
            room_size_x_m=6.0,
            room_yaw_deg=30.0,
            num_chairs=3,
            furniture_yaw_deg=20.0,
        ),
    ),
    'clean-c': (
        'clean',
        dict(seed=13, clutter='none', depth_noise=False, room_size_y_m=5.0, num_chairs=4, furniture_yaw_deg=35.0),
    ),
    'noise-a': ('noise', dict(seed=21, clutter='none')),
    'noise-b': ('noise', dict(seed=22, clutter='none', room_yaw_deg=-25.0, furniture_yaw_deg=25.0, num_chairs=3)),
    'noise-c': ('noise', dict(seed=23, clutter='none', room_size_x_m=5.5, room_size_y_m=4.5, num_chairs=4)),
    'clutter-a': ('clutter', dict(seed=31, clutter='standard')),
    'clutter-b': (
        'clutter',
        dict(seed=32, clutter='heavy', room_size_x_m=6.0, room_yaw_deg=40.0, furniture_yaw_deg=20.0),
    ),
    'clutter-c': ('clutter', dict(seed=33, clutter='heavy', room_size_y_m=5.0, num_chairs=3)),
    'clutter-d': (
        'clutter',
        dict(seed=34, clutter='heavy', room_size_x_m=5.5, room_yaw_deg=-15.0, num_chairs=4, furniture_yaw_deg=30.0),
    ),
}
QUICK = ('clean-b', 'noise-a', 'clutter-b', 'clutter-c')


def scene_folder(name: str, settings: dict) -> Path:
    """The generated sequence, written once (again only if its settings changed)."""
    config = SyntheticSceneConfig(num_frames=300, **settings)
    folder = OUT / 'scenes' / name
    truth = folder / 'instances.json'
    if truth.exists() and json.loads(truth.read_text()).get('config') == json.loads(
        json.dumps(dataclasses.asdict(config))
    ):
        return folder
    print(f'generating {name} ...', file=sys.stderr, flush=True)
    write_sequence(config, folder)
    return folder


MASK_SOURCES = {'none': None, 'clean': CLEAN, 'sam-like': MaskDegradation()}


def mask_folder(folder: Path, source: str, seed: int) -> Path | None:
    """The scene's masks from ``source`` (MASK_SOURCES), written once beside the scene."""
    degradation = MASK_SOURCES[source]
    if degradation is None:
        return None
    out = folder.parent / f'{folder.name}.masks-{source}'
    stamp = out / 'settings.json'
    wanted = json.dumps({'degradation': dataclasses.asdict(degradation), 'seed': seed})
    if not (stamp.exists() and stamp.read_text() == wanted):
        write_sam_like_masks(folder, out, degradation, seed)
        stamp.write_text(wanted)
    return out


def run_scene(folder: Path, instances: InstanceConfig, out: Path, masks_dir: Path | None = None) -> dict:
    """Fuse one generated scene as gpt4scene-process does, twice over (the second pass revisits the mapped
    room), and score every instance update; the scores are those of the first pass's last update."""
    sequence = open_sequence(folder)
    T_map_world = estimate_gravity_alignment(sequence).T_map_world
    truth = load_truth(folder / 'instances.json', T_map_world)
    history = IdHistory()
    first = {}
    fusion_ms = []
    laps = [[], []]  # per pass: (frame index, IDs, surface voxels) of each update
    seen = []  # first pass, per update: (instance ID -> truth ID, truth ID -> map voxels in its box)

    def on_update(snapshot, frame_index, objects):
        lap = 1 if laps[1] or (laps[0] and frame_index < laps[0][-1][0]) else 0
        truth_of = match_instances(snapshot.instances, truth).truth_of(0.25)
        history.add(truth_of)
        if lap == 0:
            first['snapshot'] = snapshot
            # Coverage of what a query is shown by default: the first-ranked default_num_frames of the snapshot.
            shown = first_ranked(snapshot.keyframes, QueryConfig.default_num_frames)
            first['shown'] = shown
            first['uniform'] = first_ranked(objects.choose_keyframes('uniform', instances.num_keyframes), len(shown))
            first['switches'] = history.switches
            first['mask_views'] = objects.masks.counts['mask_views']
            fusion_ms.append(snapshot.timing_ms.get('mask_fusion', 0.0))
            points = snapshot.segmentation.voxels.points
            seen.append((truth_of, {t.id: np.count_nonzero(t.box.contains(points, 0.02)) for t in truth}))
        laps[lap].append((frame_index, {i.id for i in snapshot.instances}, len(snapshot.segmentation.voxels.keys)))

    summary = process_sequence(
        folder,
        out,
        MappingConfig(device='CPU:0'),
        progress=False,
        instances=instances,
        on_update=on_update,
        masks_dir=masks_dir,
        passes=2,
    )
    snapshot = first['snapshot']
    truth, unobserved = observed_truth(truth, snapshot.segmentation.voxels.points)
    matching = match_instances(snapshot.instances, truth)
    truth_of = matching.truth_of(0.25)
    correct, total = marker_correctness(snapshot.keyframes, folder, truth_of)
    frames = len(sequence)
    new_on_revisit = set().union(*(ids for _, ids, _ in laps[1])) - set().union(*(ids for _, ids, _ in laps[0]))
    return {
        'truth': len(truth),
        'instances': len(snapshot.instances),
        'unobserved': len(unobserved),
        'recall25': matching.recall(0.25),
        'recall50': matching.recall(0.5),
        'precision25': matching.precision(0.25),
        'precision50': matching.precision(0.5),
        'small_recall50': matching.recall(0.5, lambda t: t.small),
        'small': sum(t.small for t in truth),
        'markers_correct': correct,
        'markers': total,
        'id_switches': first['switches'],
        'revisit_switches': history.switches - first['switches'],
        'coverage': keyframe_coverage(first['shown'], truth_of.keys()),
        'coverage_uniform': keyframe_coverage(first['uniform'], truth_of.keys()),
        'update_ms_median': summary['instance_update_ms_median'],
        'new_ids_per_100': new_ids_after_coverage(laps[0]),
        'late_ids_per_100': new_ids_after_coverage(laps[0], seen),
        'revisit_new_ids_per_100': 100.0 * len(new_on_revisit) / frames,
        'fusion_ms_per_view': sum(fusion_ms) / max(1, first['mask_views']) if masks_dir else None,
        'missed': [f'{t.id}:{t.label}' for t, best in zip(truth, matching.best_iou()) if best < 0.25],
        'extra': [f'{i.id}' for i in snapshot.instances if i.id not in truth_of],
    }


def new_ids_after_coverage(updates: list, seen: list | None = None, covered_share: float = 0.9) -> float | None:
    """New instance IDs per 100 frames once the room is covered: after the first update whose map holds
    ``covered_share`` of the final map's surface voxels. ``updates``: (frame index, IDs, surface voxels) of each
    instance update. None when the room is covered only at the end.

    With ``seen`` (per update: instance ID -> truth ID, and truth ID -> map voxels in its box), the first IDs of
    objects that the coverage had not reached (under a quarter of their final voxels in the map at the update
    before the mark, and matched by no earlier ID) are left out: what is left are late IDs of objects mapped
    already, and fragments matching no object."""
    final_voxels = updates[-1][2]
    covered = next(k for k, (_, _, voxels) in enumerate(updates) if voxels >= covered_share * final_voxels)
    frames = updates[-1][0] - updates[covered][0]
    if frames <= 0:
        return None
    known = set().union(*(ids for _, ids, _ in updates[: covered + 1]))
    new = set().union(*(ids for _, ids, _ in updates[covered + 1 :])) - known
    if seen is not None:
        final, before = seen[-1][1], seen[covered - 1][1] if covered else {}
        matched_before = {t for truth_of, _ in seen[: covered + 1] for t in truth_of.values()}
        unreached = {t for t, count in final.items() if before.get(t, 0) < 0.25 * count} - matched_before
        first_match = {}
        for truth_of, _ in seen[covered + 1 :]:
            for instance, t in truth_of.items():
                first_match.setdefault(instance, t)
        new = {i for i in new if first_match.get(i) not in unreached}
    return 100.0 * len(new) / frames


def fmt(value, digits=2):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return '-'
    return f'{value:.{digits}f}' if isinstance(value, float) else str(value)


def print_scene_table(rows: dict) -> None:
    header = (
        'scene',
        'objects',
        'inst',
        'R@.25',
        'R@.5',
        'P@.25',
        'P@.5',
        'small R@.5',
        'markers',
        'ID sw',
        'new IDs /100 fr',
        'of mapped objects /100 fr',
        'revisit: ID sw',
        'revisit: new IDs /100 fr',
        'cover',
        'cover unif',
        'update ms',
        'mask fusion ms/frame',
    )
    print('| ' + ' | '.join(header) + ' |')
    print('|' + '---|' * len(header))
    for name, r in rows.items():
        markers = f'{r["markers_correct"]}/{r["markers"]}'
        objects = f'{r["truth"]}' + (f' (+{r["unobserved"]} unseen)' if r['unobserved'] else '')
        print(
            '| '
            + ' | '.join(
                [
                    name,
                    objects,
                    str(r['instances']),
                    fmt(r['recall25']),
                    fmt(r['recall50']),
                    fmt(r['precision25']),
                    fmt(r['precision50']),
                    f'{fmt(r["small_recall50"])} ({r["small"]})',
                    markers,
                    str(r['id_switches']),
                    fmt(r['new_ids_per_100']),
                    fmt(r['late_ids_per_100']),
                    str(r['revisit_switches']),
                    fmt(r['revisit_new_ids_per_100']),
                    fmt(r['coverage']),
                    fmt(r['coverage_uniform']),
                    fmt(r['update_ms_median'], 0),
                    fmt(r['fusion_ms_per_view'], 0),
                ]
            )
            + ' |'
        )


def worst(group: list, key: str) -> float | None:
    values = [r[key] for r in group if r[key] is not None]
    return max(values) if values else None


def print_condition_table(rows: dict) -> None:
    print(
        '\n| condition | scenes | R@.25 | P@.25 | R@.5 | small R@.5 | marker correctness | ID switches | '
        'new IDs per 100 frames after coverage: all / objects unreached left out | revisit: ID switches | '
        'revisit: new IDs per 100 frames | coverage (coverage / uniform) |'
    )
    print('|---|---|---|---|---|---|---|---|---|---|---|---|')
    conditions = {}
    for name, r in rows.items():
        conditions.setdefault(SCENES[name][0], []).append(r)
    for condition, group in conditions.items():

        def mean(key):
            return statistics.mean(r[key] for r in group if r[key] is not None and not np.isnan(r[key]))

        small_hits = sum(r['small_recall50'] * r['small'] for r in group if r['small'])
        small_total = sum(r['small'] for r in group)
        markers = sum(r['markers_correct'] for r in group) / max(1, sum(r['markers'] for r in group))
        print(
            f'| {condition} | {len(group)} | {mean("recall25"):.2f} | {mean("precision25"):.2f} | '
            f'{mean("recall50"):.2f} | {small_hits / max(small_total, 1):.2f} ({small_total}) | {markers:.3f} | '
            f'{sum(r["id_switches"] for r in group)} | {fmt(worst(group, "new_ids_per_100"))} / '
            f'{fmt(worst(group, "late_ids_per_100"))} (worst) | '
            f'{sum(r["revisit_switches"] for r in group)} | {fmt(worst(group, "revisit_new_ids_per_100"))} (worst) | '
            f'{mean("coverage"):.2f} / {mean("coverage_uniform"):.2f} |'
        )


def run_kitchen(instances: InstanceConfig) -> None:
    """The 1000 frames played twice: the first pass maps the room, the second revisits it (every new ID there is
    churn: the map hardly grows)."""
    if not (KITCHEN / 'camera-intrinsics.txt').exists():
        print(f'\nkitchen: {KITCHEN} not found, skipped')
        return
    out = OUT / 'kitchen'
    at_500 = {}
    laps = [[], []]  # per pass: (frame index, IDs, surface voxels) of each update
    snapshots = [None, None]
    published = [[], []]  # per pass: the instances of each update, scored against the annotation at the end

    def on_update(snapshot, frame_index, objects):
        lap = 1 if laps[1] or (laps[0] and frame_index < laps[0][-1][0]) else 0
        if lap == 0 and frame_index <= 500:
            at_500['ids'] = {i.id for i in snapshot.instances}
        snapshots[lap] = snapshot
        published[lap].append(list(snapshot.instances))
        laps[lap].append((frame_index, {i.id for i in snapshot.instances}, len(snapshot.segmentation.voxels.keys)))

    started = time.perf_counter()
    summary = process_sequence(
        KITCHEN, out, MappingConfig(device='CPU:0'), progress=False, instances=instances, on_update=on_update, passes=2
    )
    first, last = snapshots
    ids_first = {i.id for i in first.instances}
    survived = len(at_500.get('ids', set()) & ids_first)
    seen_first = set().union(*(ids for _, ids, _ in laps[0]))
    new_on_revisit = set().union(*(ids for _, ids, _ in laps[1])) - seen_first
    kept = len(ids_first & {i.id for i in last.instances})
    print(
        f'\nkitchen (1000 frames played twice, {time.perf_counter() - started:.0f} s): {len(first.instances)} '
        f'instances after the first pass; {survived} of the {len(at_500.get("ids", ()))} IDs of frame 500 still '
        f'there at frame 1000; {fmt(new_ids_after_coverage(laps[0]))} new IDs per 100 frames after coverage '
        f'(first pass); revisit: {len(new_on_revisit)} new IDs in 1000 frames '
        f'({100.0 * len(new_on_revisit) / 1000:.2f} per 100 frames), {kept} of the {len(ids_first)} IDs of the '
        f'first pass still published at the end, surface {laps[0][-1][2]} -> {laps[1][-1][2]} voxels; '
        f'instance update median {summary["instance_update_ms_median"]} ms '
        f'(last: {", ".join(f"{k} {v:.0f}" for k, v in last.timing_ms.items())} ms); images in {out}'
    )
    if KITCHEN_ANNOTATION.exists():
        # The boxes were drawn in the map frame of an earlier run: move them into this run's (the same estimate
        # of gravity, so all but identical).
        T_now = np.array(json.loads((out / 'bev_meta.json').read_text())['T_map_world'])
        T_then = np.array(json.loads(KITCHEN_ANNOTATION.read_text())['T_map_world'])
        truth = load_truth(KITCHEN_ANNOTATION, T_now @ np.linalg.inv(T_then))
        history, switches = IdHistory(), []
        for lap in published:
            for instances_of_update in lap:
                history.add(match_instances(instances_of_update, truth).truth_of(0.25))
            switches.append(history.switches)
        print(
            f'kitchen annotation ID switches (IoU >= 0.25, every update): first pass {switches[0]}, '
            f'revisit {switches[1] - switches[0]}'
        )
        for when, snapshot in (('after the first pass', first), ('after the revisit', last)):
            matching = match_instances(snapshot.instances, truth)
            best = matching.best_iou()
            print(
                f'kitchen annotation {when}: {np.sum(best >= 0.25)} of {len(truth)} clearly separate objects found '
                f'at IoU >= 0.25 ({matching.recall(0.25):.2f}); missed: '
                + ', '.join(f'{t.label}' for t, b in zip(truth, best) if b < 0.25)
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help=f'only {", ".join(QUICK)}')
    parser.add_argument('--scenes', default='', help='comma-separated scene names (none: only the kitchen)')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE', help='InstanceConfig override')
    parser.add_argument('--no-kitchen', action='store_true')
    parser.add_argument(
        '--masks',
        default='none',
        choices=sorted(MASK_SOURCES),
        help='instance masks fused per frame: none (geometric only), clean (true masks, numbered per frame), '
        'sam-like (misses, merges, splits, floor and wall masks, ragged borders)',
    )
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, value = item.split('=', 1)
        overrides[key] = (
            type(getattr(InstanceConfig(), key))(value)
            if not isinstance(getattr(InstanceConfig(), key), bool)
            else value.lower() == 'true'
        )
    instances = InstanceConfig(**overrides)
    names = (
        []
        if args.scenes == 'none'
        else args.scenes.split(',')
        if args.scenes
        else list(QUICK if args.quick else SCENES)
    )
    rows = {}
    for name in names:
        folder = scene_folder(name, SCENES[name][1])
        started = time.perf_counter()
        masks = mask_folder(folder, args.masks, SCENES[name][1]['seed'])
        rows[name] = run_scene(folder, instances, OUT / 'runs' / name, masks)
        print(
            f'{name}: {time.perf_counter() - started:.0f} s, missed {rows[name]["missed"]}, '
            f'extra {len(rows[name]["extra"])}',
            file=sys.stderr,
            flush=True,
        )
    settings = ', '.join(f'{k}={v}' for k, v in overrides.items()) or 'defaults'
    if rows:
        print(f'\nInstances on generated scenes, masks: {args.masks} ({settings})\n')
        print_scene_table(rows)
        print_condition_table(rows)
    if not args.no_kitchen:
        run_kitchen(instances)
    return 0


if __name__ == '__main__':
    sys.exit(main())
