"""A short soak (bench/soak.py for 45 s, a query every 5 s) with loose bounds: the graph keeps running at
sensor rate with queries, no node dies, outputs keep coming, memory does not run away. The 30-minute numbers are in
BENCHMARKS.md."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import KITCHEN, REPO_ROOT

from gpt4scene_ros.sim.scene import SyntheticSceneConfig
from gpt4scene_ros.sim.writer import write_sequence


@pytest.mark.timing
def test_a_short_soak_keeps_every_output_and_memory_bounded(tmp_path):
    data = KITCHEN
    if not (KITCHEN / 'camera-intrinsics.txt').exists():  # users' machines: a generated room instead
        data = tmp_path / 'scene'
        write_sequence(SyntheticSceneConfig(seed=8, num_frames=150).with_resolution(640, 480), data)
    out = tmp_path / 'soak'
    result = subprocess.run(
        [
            sys.executable,
            '-P',
            str(REPO_ROOT / 'bench' / 'soak.py'),
            '--minutes',
            '0.6',
            '--query-period-s',
            '4',
            '--data',
            str(data),
            '--out',
            str(out),
            '--json',
            str(out / 'soak.json'),
        ],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    soak = json.loads((out / 'soak.json').read_text())
    assert (out / 'soak.png').stat().st_size > 10_000
    queries = soak['queries']
    assert len(queries) >= 5 and sum(q['ok'] for q in queries) >= len(queries) - 1, queries
    assert all(row['integrated'] > 3.0 for row in soak['rows']), soak['rows']
    samples = soak['samples']
    after_warm_up = [s for s in samples if s['t'] >= 20.0]
    growth = after_warm_up[-1]['rss_mapping_node'] / after_warm_up[0]['rss_mapping_node']
    assert growth < 1.25, f'mapping node RSS grew by {100 * (growth - 1):.0f} % in 16 s'
    for output, gap in soak['gaps'].items():
        # The instance update takes 5-7 s on the kitchen while this machine is loaded (BENCHMARKS.md): the
        # object outputs only have to keep coming; the map outputs keep their period.
        bound = 30.0 if output in ('objects', 'scene_snapshot') else 4.0 * soak['periods'][output]
        assert gap <= bound, f'{output}: a gap of {gap:.1f} s'
    assert samples[-1]['frame_latency_ms_p95'] < 500.0
