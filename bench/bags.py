"""Benchmark of rosbag2 input: recording a sequence as a bag, opening it, loading frames, playing it over DDS.

  source scripts/env.sh && python -P bench/bags.py [--data ../shared/data/7scenes-redkitchen] [--frames 300]

The same frames as a 7-Scenes folder, an MCAP bag and a sqlite3 bag (written by
``core.bags.write_bag``, so they hold raw rgb8 / 16UC1 images as a RealSense
driver records them). Prints one table (medians and p95).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / 'bench'))

from foundation import bench_playback, print_table_header, row, timed  # noqa: E402

from gpt4scene_ros.io.bags import write_bag  # noqa: E402
from gpt4scene_ros.io.open import open_sequence  # noqa: E402
from gpt4scene_ros.sim.scene import SyntheticSceneConfig  # noqa: E402
from gpt4scene_ros.sim.writer import write_sequence  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', type=Path, default=REPO_ROOT.parent / 'shared' / 'data' / '7scenes-redkitchen')
    parser.add_argument('--frames', type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault('ROS_DOMAIN_ID', str(60 + os.getpid() % 30))
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        data = args.data
        if not data.is_dir():  # no real data here: a generated room
            data = scratch / 'scene'
            write_sequence(SyntheticSceneConfig(seed=4, num_frames=args.frames), data)
        folder = open_sequence(data)
        frames = min(args.frames, len(folder))
        print_table_header(f'{frames} frames of {data.name} ({folder.intrinsics.width}x{folder.intrinsics.height})')
        rows = [row('folder: load one frame', timed(lambda: folder.load(frames // 2), 20))]
        for storage in ('mcap', 'sqlite3'):
            bag_path = scratch / storage
            written = timed(lambda: write_bag(folder, bag_path, storage=storage, max_frames=frames), 1)
            size_mb = sum(p.stat().st_size for p in bag_path.iterdir()) / 1e6
            rows.append(
                row(
                    f'{storage}: record {frames} frames (per frame)',
                    written / frames,
                    f'{written[0] / 1000:.1f} s in all, {size_mb:.0f} MB',
                )
            )
            rows.append(
                row(f'{storage}: open (index every message)', timed(lambda: open_sequence(bag_path).close(), 3))
            )
            bag = open_sequence(bag_path)
            rows.append(row(f'{storage}: load one frame', timed(lambda: bag.load(frames // 2), 20)))
            bag.close()
            rows += bench_playback(bag_path, frames)
        for line in rows:
            print(line)


if __name__ == '__main__':
    main()
