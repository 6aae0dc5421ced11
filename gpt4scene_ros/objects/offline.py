"""A recorded sequence fused offline into a map and its objects, with the outputs written to a folder: what
``gpt4scene-process`` runs, and the benchmarks (``bench/``, ``gpt4scene-eval``) with it.

Writes into the output folder:
- ``bev.png``: the bird's-eye view (north-up, row 0 = largest map y);
- ``bev_meta.json``: BEV metadata (origin of the bottom-left corner, metres per
  pixel, frame) plus ``T_map_world`` (dataset world -> gravity-aligned map) and
  how it was derived;
- ``map.ply``: the map's surface points with colours (map frame);
- ``instances.json``: the object instances (id, label, confidence, oriented
  box: centre, size, yaw about z; surface voxels) in the map frame of
  ``bev_meta.json``;
- ``bev_marked.png``: the BEV with the instances' ID markers;
- ``keyframes/NNNN.png`` (marked) and ``keyframes.json``: the chosen keyframes,
  their frame number in the input, camera pose ``T_map_camera`` and markers in
  the input frame's own pixels;
- ``timing.json``: the timing summary.

The instances are updated every ``update_every`` integrated frames while
the sequence is fused, as the mapping node does every ``instance_period_s``,
so their IDs are tracked the same way.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm  # type: ignore[import-untyped]

from gpt4scene_ros.common.frames import RgbdFrame
from gpt4scene_ros.common.masks import MaskError
from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.common.settings.mapping import MappingConfig
from gpt4scene_ros.io.bags import BagTopics
from gpt4scene_ros.io.masks import MaskFolder
from gpt4scene_ros.io.open import open_sequence
from gpt4scene_ros.io.sequence import FrameError
from gpt4scene_ros.mapping.bev import map_bev
from gpt4scene_ros.mapping.gravity import estimate_gravity_alignment, identity_alignment
from gpt4scene_ros.mapping.tsdf import SceneMap
from gpt4scene_ros.objects.detectors import make_detector
from gpt4scene_ros.objects.mapper import Mapper
from gpt4scene_ros.objects.scene_objects import ObjectsSnapshot, SceneObjects

logger = logging.getLogger('gpt4scene-process')


def write_ply(path: Path, points: np.ndarray, colors: np.ndarray) -> None:
    """Binary little-endian PLY with float xyz and uchar rgb, written atomically."""
    vertices = np.empty(
        len(points), dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('red', 'u1'), ('green', 'u1'), ('blue', 'u1')]
    )
    vertices['x'], vertices['y'], vertices['z'] = np.asarray(points, dtype=np.float32).T
    vertices['red'], vertices['green'], vertices['blue'] = np.asarray(colors, dtype=np.uint8).T
    header = (
        'ply\nformat binary_little_endian 1.0\n'
        f'element vertex {len(points)}\n'
        'property float x\nproperty float y\nproperty float z\n'
        'property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n'
    )
    temporary = path.with_name(path.name + '.tmp')
    with open(temporary, 'wb') as stream:
        stream.write(header.encode('ascii'))
        stream.write(vertices.tobytes())
    temporary.replace(path)


def write_objects(out_dir: Path, snapshot: ObjectsSnapshot, frame_id: str = 'map') -> None:
    """instances.json, bev_marked.png, keyframes/NNNN.png and keyframes.json of a snapshot."""
    instances = {
        'frame_id': frame_id,
        'map_stamp_s': snapshot.stamp_s,
        'instances': [instance.to_json() for instance in snapshot.instances],
    }
    (out_dir / 'instances.json').write_text(json.dumps(instances, indent=1))
    cv2.imwrite(str(out_dir / 'bev_marked.png'), cv2.cvtColor(snapshot.bev_marked(), cv2.COLOR_RGB2BGR))
    folder = out_dir / 'keyframes'
    folder.mkdir(exist_ok=True)
    for old in folder.glob('*.png'):
        old.unlink()
    records = []
    for position, keyframe in enumerate(snapshot.keyframes):
        marked = snapshot.marked(keyframe)
        cv2.imwrite(str(folder / f'{position:04d}.png'), cv2.cvtColor(marked, cv2.COLOR_RGB2BGR))
        records.append(
            {
                'file': f'keyframes/{position:04d}.png',
                'frame_index': keyframe.index,
                'rank': keyframe.rank,
                'stamp_s': keyframe.stamp_s,
                'T_map_camera': np.round(keyframe.T_map_camera, 6).tolist(),
                'markers': [marker.to_json() for marker in keyframe.markers],
            }
        )
    (out_dir / 'keyframes.json').write_text(json.dumps({'keyframes': records}, indent=1))


def process_sequence(
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: MappingConfig,
    *,
    gravity: str = 'auto',
    stride: int = 1,
    max_frames: int = 0,
    progress: bool = True,
    instances: InstanceConfig | None = None,
    update_every: int = 60,
    on_update: Callable[[ObjectsSnapshot, int, SceneObjects], None] | None = None,
    bag_topics: BagTopics | None = None,
    masks_dir: str | os.PathLike[str] | None = None,
    passes: int = 1,
) -> dict:
    """Fuse ``data_dir`` into a map, write the outputs into ``out_dir`` and return the summary.

    ``instances`` (default: :class:`InstanceConfig` defaults) configures the object layer, updated every
    ``update_every`` integrated frames and at the end; ``on_update(snapshot, frame_index, objects)`` sees each
    update (``objects``: the :class:`SceneObjects`). ``bag_topics``: the topics of a rosbag2 input.
    ``masks_dir``: a folder of instance masks (:class:`~gpt4scene_ros.io.masks.MaskFolder`) fused into the objects.
    ``passes``: play the frames this many times, the later passes with their stamps moved on by the sequence's
    duration (a robot revisiting the room it mapped: the benchmarks measure the IDs' stability with it).
    """
    if passes < 1:
        raise ValueError(f'passes must be at least 1, got {passes}')
    started = time.perf_counter()
    sequence = open_sequence(data_dir, bag_topics=bag_topics)
    positions = list(range(0, len(sequence), stride))
    if max_frames:
        positions = positions[:max_frames]
    period_s = (
        sequence.timestamp_s(positions[-1]) - sequence.timestamp_s(positions[0]) + 1.0 / 30.0 if positions else 0.0
    )
    played = [(lap, position) for lap in range(passes) for position in positions]
    alignment = (
        estimate_gravity_alignment(sequence)
        if gravity == 'auto'
        else identity_alignment('gravity alignment switched off (--gravity none)')
    )
    scene_map = SceneMap(config)
    instances = instances or InstanceConfig()
    objects = SceneObjects(
        instances,
        config,
        make_detector(
            instances.detector, instances.detector_model, instances.detector_min_score, instances.detector_device
        ),
    )
    mapper = Mapper(scene_map, objects)
    load_ms: list[float] = []
    integrate_ms: list[float] = []
    update_ms: list[float] = []
    skipped: list[str] = []
    refused: dict[str, int] = {}
    mask_folder = MaskFolder(masks_dir) if masks_dir is not None else None
    mask_counts = {'frames_with_masks': 0, 'frames_without_masks': 0, 'mask_errors': 0}
    snapshot: ObjectsSnapshot | None = None
    frame: RgbdFrame | None = None

    def update_objects() -> None:
        nonlocal snapshot
        assert frame is not None
        result = objects.update(*scene_map.surface(), frame.timestamp_s, frame.index, all_candidates=True)
        update_ms.append(result.timing_ms['total'])
        snapshot = result
        if on_update is not None:
            on_update(result, frame.index, objects)

    if progress and not sys.stderr.isatty():
        print(f'fusing {len(played)} frames (no progress bar: stderr is not a terminal)', file=sys.stderr)
    bar = tqdm(
        total=len(played), unit='frame', desc='fusing', file=sys.stderr, disable=None if progress else True
    )  # None: only on a terminal
    for lap, position in played:
        tick = time.perf_counter()
        try:
            frame = sequence.load(position)
            if lap:
                frame = dataclasses.replace(frame, timestamp_s=frame.timestamp_s + lap * period_s)
        except FrameError as error:
            skipped.append(str(error))
        else:
            load_ms.append((time.perf_counter() - tick) * 1000.0)
            T_map_camera = alignment.T_map_world @ frame.T_world_camera
            masks = None
            if mask_folder is not None:
                try:
                    masks = mask_folder.load(frame.index, frame.color.shape[:2])
                except MaskError as error:
                    mask_counts['mask_errors'] += 1
                    logger.warning('%s: frame %d fused without masks', error, frame.index)
                mask_counts['frames_with_masks' if masks is not None else 'frames_without_masks'] += 1
            result = mapper.integrate(
                frame.color,
                frame.depth,
                sequence.intrinsics,
                T_map_camera,
                frame.timestamp_s,
                frame.index,
                frame.depth_scale,
                masks,
            )
            if result.integrated:
                integrate_ms.append(result.duration_ms)
                if update_every and len(integrate_ms) % update_every == 0:
                    update_objects()
            else:
                refused[result.reason] = refused.get(result.reason, 0) + 1
        bar.update()
    bar.close()
    missing = mask_counts['frames_without_masks'] - mask_counts['mask_errors']
    if mask_folder is not None and missing:
        logger.warning('%d of %d frames have no masks in %s: fused without masks', missing, len(played), masks_dir)
    if frame is not None and (snapshot is None or snapshot.map_version != frame.index):
        update_objects()

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tick = time.perf_counter()
    bev = map_bev(*scene_map.point_cloud(), config)
    bev_ms = (time.perf_counter() - tick) * 1000.0
    cv2.imwrite(str(out_dir / 'bev.png'), cv2.cvtColor(bev.image, cv2.COLOR_RGB2BGR))
    meta = {
        **bev.to_json(),
        'T_map_world': alignment.T_map_world.tolist(),
        'gravity_alignment': alignment.method,
        'source': str(data_dir),
        'voxel_size_m': config.voxel_size_m,
    }
    (out_dir / 'bev_meta.json').write_text(json.dumps(meta, indent=2))
    points, colors = scene_map.point_cloud()
    write_ply(out_dir / 'map.ply', points, colors)
    if snapshot is not None:
        write_objects(out_dir, snapshot)

    def median(values: list[float]) -> float | None:
        return round(statistics.median(values), 2) if values else None

    summary = {
        'frames': len(played),
        'integrated': len(integrate_ms),
        'skipped_unreadable': len(skipped),
        'refused': refused,
        'device': scene_map.device,
        'load_ms_median': median(load_ms),
        'integrate_ms_median': median(integrate_ms),
        'integrate_ms_p95': round(float(np.percentile(integrate_ms, 95)), 2) if integrate_ms else None,
        'bev_ms': round(bev_ms, 1),
        'map_blocks': scene_map.num_blocks,
        'map_memory_mb': round(scene_map.memory_bytes / 1e6, 1),
        'map_points': len(points),
        'instances': len(snapshot.instances) if snapshot else 0,
        'keyframes': len(snapshot.keyframes) if snapshot else 0,
        'markers_on_keyframes': sum(len(k.markers) for k in snapshot.keyframes) if snapshot else 0,
        'instance_updates': len(update_ms),
        **({**mask_counts, **dict(objects.masks.counts)} if mask_folder is not None else {}),
        'instance_update_ms_median': median(update_ms),
        'total_s': round(time.perf_counter() - started, 2),
    }
    (out_dir / 'timing.json').write_text(json.dumps(summary, indent=2))
    return summary
