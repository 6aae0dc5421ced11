"""``gpt4scene-process DATA_DIR OUT_DIR``: the mapping core on a recorded sequence, without ROS.

Writes into OUT_DIR:
- ``bev.png``: the bird's-eye view (north-up, row 0 = largest map y);
- ``bev_meta.json``: BEV metadata (origin of the bottom-left corner, metres per
  pixel, frame) plus ``T_map_world`` (dataset world -> gravity-aligned map) and
  how it was derived;
- ``map.ply``: the map's surface points with colours (map frame);
- ``timing.json``: the timing summary that is also printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from .config import MAP_DEVICES, MappingConfig
from .datasets import FrameError, SequenceError, open_sequence
from .gravity import estimate_gravity_alignment, identity_alignment
from .mapping import SceneMap


def write_ply(path: Path, points: np.ndarray, colors: np.ndarray) -> None:
    """Binary little-endian PLY with float xyz and uchar rgb, written atomically."""
    vertices = np.empty(len(points), dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'),
                                            ('red', 'u1'), ('green', 'u1'), ('blue', 'u1')])
    vertices['x'], vertices['y'], vertices['z'] = np.asarray(points, dtype=np.float32).T
    vertices['red'], vertices['green'], vertices['blue'] = np.asarray(colors, dtype=np.uint8).T
    header = ('ply\nformat binary_little_endian 1.0\n'
              f'element vertex {len(points)}\n'
              'property float x\nproperty float y\nproperty float z\n'
              'property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n')
    temporary = path.with_name(path.name + '.tmp')
    with open(temporary, 'wb') as stream:
        stream.write(header.encode('ascii'))
        stream.write(vertices.tobytes())
    temporary.replace(path)


def _progress(done: int, total: int, started: float):
    if done == total or done % 10 == 0:
        rate = done / max(time.perf_counter() - started, 1e-9)
        bar = '#' * int(30 * done / total)
        print(f'\r[{bar:<30}] {done}/{total} frames, {rate:.1f} frames/s', end='' if done < total else '\n',
              file=sys.stderr, flush=True)


def process_sequence(data_dir, out_dir, config: MappingConfig, *, gravity: str = 'auto', stride: int = 1,
                     max_frames: int = 0, progress: bool = True) -> dict:
    """Fuse ``data_dir`` into a map, write the outputs into ``out_dir`` and return the timing summary."""
    started = time.perf_counter()
    sequence = open_sequence(data_dir)
    positions = list(range(0, len(sequence), stride))
    if max_frames:
        positions = positions[:max_frames]
    alignment = (estimate_gravity_alignment(sequence) if gravity == 'auto'
                 else identity_alignment('gravity alignment switched off (--gravity none)'))
    scene_map = SceneMap(config)
    load_ms, integrate_ms, skipped, refused = [], [], [], {}
    integrate_started = time.perf_counter()
    for done, position in enumerate(positions, start=1):
        tick = time.perf_counter()
        try:
            frame = sequence.load(position)
        except FrameError as error:
            skipped.append(str(error))
        else:
            load_ms.append((time.perf_counter() - tick) * 1000.0)
            result = scene_map.integrate(frame.color, frame.depth_m, sequence.intrinsics,
                                         alignment.T_map_world @ frame.T_world_camera)
            if result.integrated:
                integrate_ms.append(result.duration_ms)
            else:
                refused[result.reason] = refused.get(result.reason, 0) + 1
        if progress:
            _progress(done, len(positions), integrate_started)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tick = time.perf_counter()
    bev = scene_map.render_bev()
    bev_ms = (time.perf_counter() - tick) * 1000.0
    cv2.imwrite(str(out_dir / 'bev.png'), cv2.cvtColor(bev.image, cv2.COLOR_RGB2BGR))
    meta = {**bev.to_json(), 'T_map_world': alignment.T_map_world.tolist(), 'gravity_alignment': alignment.method,
            'source': str(data_dir), 'voxel_size_m': config.voxel_size_m}
    (out_dir / 'bev_meta.json').write_text(json.dumps(meta, indent=2))
    points, colors = scene_map.point_cloud()
    write_ply(out_dir / 'map.ply', points, colors)

    def median(values):
        return round(statistics.median(values), 2) if values else None
    summary = {
        'frames': len(positions), 'integrated': len(integrate_ms), 'skipped_unreadable': len(skipped),
        'refused': refused, 'device': scene_map.device,
        'load_ms_median': median(load_ms), 'integrate_ms_median': median(integrate_ms),
        'integrate_ms_p95': round(float(np.percentile(integrate_ms, 95)), 2) if integrate_ms else None,
        'bev_ms': round(bev_ms, 1), 'map_blocks': scene_map.num_blocks,
        'map_memory_mb': round(scene_map.memory_bytes / 1e6, 1), 'map_points': len(points),
        'total_s': round(time.perf_counter() - started, 2),
    }
    (out_dir / 'timing.json').write_text(json.dumps(summary, indent=2))
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='gpt4scene-process', description=__doc__.splitlines()[0])
    parser.add_argument('data_dir', help='7-Scenes or TUM RGB-D folder')
    parser.add_argument('out_dir', help='folder for bev.png, bev_meta.json, map.ply, timing.json')
    parser.add_argument('--voxel-size', type=float, default=MappingConfig.voxel_size_m, help='metres')
    parser.add_argument('--device', choices=MAP_DEVICES, default='auto')
    parser.add_argument('--stride', type=int, default=1, help='use every n-th frame')
    parser.add_argument('--max-frames', type=int, default=0, help='0 = all')
    parser.add_argument('--gravity', choices=('auto', 'none'), default='auto',
                        help='auto: z-up map frame estimated from the data')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    if args.stride < 1 or args.max_frames < 0:
        parser.error('--stride must be >= 1 and --max-frames >= 0')
    try:
        config = dataclasses.replace(MappingConfig(), voxel_size_m=args.voxel_size, device=args.device)
        summary = process_sequence(args.data_dir, args.out_dir, config, gravity=args.gravity, stride=args.stride,
                                   max_frames=args.max_frames, progress=not args.quiet)
    except (SequenceError, ValueError) as error:
        print(f'gpt4scene-process: {error}', file=sys.stderr)
        return 2
    for key, value in summary.items():
        print(f'{key}: {value}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
