"""Turn hand-drawn regions of the 7-Scenes kitchen map into the annotation boxes of bench/data/redkitchen_objects.json.

    python -P bench/annotate_kitchen.py OUT_DIR_OF_GPT4SCENE_PROCESS

Each region below was drawn by looking at the kitchen's BEV with a 0.5 m grid and its colour frames: an
upright rectangle (x, y range in the gravity-aligned map frame that ``gpt4scene-process`` writes, yaw about
its centre) and a height range that hold one object's surface points and as few others as possible. The
box of an object is the tight box of the map points inside its region (1 % trimmed), so the annotation
follows the map, not guesses of sizes. Objects under or behind others are only as complete as the map is.
The output records the ``T_map_world`` of the run it was made from, so it can be moved into another run's
map frame.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gpt4scene_ros.objects.boxes import OrientedBox, fit_box  # noqa: E402

# label, (x0, x1), (y0, y1), (z0, z1), yaw of the region and the box (radians), exclusions (same form).
TABLE = ((-1.05, 1.25), (1.15, 2.12), (0.64, 0.79))
REGIONS = [
    ('table', (-1.05, 1.25), (1.15, 2.12), (0.0, 0.79), 0.0, []),
    ('chair', (-0.62, -0.02), (1.68, 2.42), (0.02, 1.0), -0.35, [TABLE]),
    ('chair', (0.3, 0.95), (1.62, 2.4), (0.02, 1.0), 0.4, [TABLE]),
    ('chair', (-1.45, -0.95), (1.35, 2.05), (0.02, 1.0), 0.0, [TABLE]),
    ('chair', (1.0, 1.47), (1.3, 1.92), (0.02, 1.0), 0.0, [TABLE]),
    ('mug', (-0.82, -0.68), (1.71, 1.85), (0.705, 0.85), 0.0, []),
    ('mug', (0.24, 0.42), (1.64, 1.8), (0.705, 0.85), 0.0, []),
    ('magazine', (-0.52, -0.28), (1.36, 1.68), (0.7, 0.76), 0.0, []),
    ('plastic box', (0.38, 0.72), (1.45, 1.88), (0.72, 0.95), 0.0, []),
    ('game controller', (0.62, 0.82), (1.36, 1.56), (0.705, 0.8), 0.0, []),
    ('pc tower', (1.72, 2.02), (2.9, 3.4), (0.02, 0.55), 0.0, []),
]


def inside(points, xr, yr, zr, yaw, centre):
    c, s = math.cos(-yaw), math.sin(-yaw)
    local = (points[:, :2] - centre) @ np.array([[c, -s], [s, c]]).T + centre
    return (
        (local[:, 0] >= xr[0])
        & (local[:, 0] <= xr[1])
        & (local[:, 1] >= yr[0])
        & (local[:, 1] <= yr[1])
        & (points[:, 2] >= zr[0])
        & (points[:, 2] <= zr[1])
    )


def read_ply(path: Path) -> np.ndarray:
    data = path.read_bytes()
    header, body = data.split(b'end_header\n', 1)
    count = int(next(line for line in header.decode().splitlines() if line.startswith('element vertex')).split()[2])
    vertices = np.frombuffer(
        body, dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('r', 'u1'), ('g', 'u1'), ('b', 'u1')], count=count
    )
    return np.stack([vertices['x'], vertices['y'], vertices['z']], axis=1).astype(np.float64)


def main(argv=None) -> int:
    run = Path((argv or sys.argv[1:])[0])
    points = read_ply(run / 'map.ply')
    meta = json.loads((run / 'bev_meta.json').read_text())
    objects = []
    for k, (label, xr, yr, zr, yaw, exclusions) in enumerate(REGIONS, start=1):
        centre = np.array([(xr[0] + xr[1]) / 2, (yr[0] + yr[1]) / 2])
        mask = inside(points, xr, yr, zr, yaw, centre)
        for ex in exclusions:
            mask &= ~inside(points, *ex, 0.0, np.zeros(2))
        chosen = points[mask]
        box = fit_box(chosen, 0.02, floor_z=0.0, trim=0.01)
        if yaw:  # the region's yaw is the object's: refit in it
            c, s = math.cos(-yaw), math.sin(-yaw)
            local = chosen[:, :2] @ np.array([[c, -s], [s, c]]).T
            lo, hi = np.percentile(local, 1, axis=0), np.percentile(local, 99, axis=0)
            mid = (lo + hi) / 2
            c, s = math.cos(yaw), math.sin(yaw)
            xy = np.array([[c, -s], [s, c]]) @ mid
            box = OrientedBox((xy[0], xy[1], box.center[2]), (hi[0] - lo[0], hi[1] - lo[1], box.size[2]), yaw)
        objects.append({'id': k, 'label': label, **box.to_json(), 'points': int(mask.sum())})
        print(
            f'{k:2d} {label:16s} {len(chosen):6d} points  centre {np.round(box.center, 2)} size '
            f'{np.round(box.size, 2)} yaw {box.yaw:.2f}'
        )
    out = Path(__file__).resolve().parent / 'data' / 'redkitchen_objects.json'
    out.write_text(
        json.dumps(
            {
                'description': 'Hand-drawn boxes of clearly separate objects of the 7-Scenes '
                'RedKitchen map (bench/annotate_kitchen.py), map frame of '
                'gpt4scene-process',
                'T_map_world': meta['T_map_world'],
                'objects': objects,
            },
            indent=1,
        )
    )
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
