"""The README's main job, end to end: a synthetic scene played over DDS and queried."""

from __future__ import annotations

import ast
import subprocess
import sys

from gpt4scene_ros.core.synthetic import SyntheticSceneConfig, write_sequence


def test_demo_plays_a_synthetic_scene_and_answers_an_objects_query(tmp_path):
    scene_dir = tmp_path / 'scene'
    write_sequence(SyntheticSceneConfig(seed=3, num_frames=12).with_resolution(320, 240), scene_dir)
    result = subprocess.run([sys.executable, '-P', '-m', 'gpt4scene_ros.ros.demo', str(scene_dir), '--frames', '10'],
                            capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'received 10 colour frames' in result.stdout
    assert 'SceneQuery(task=objects) -> success=True' in result.stdout
    # The synthetic world is already z-up with the floor at z = 0: the player's estimate must agree.
    alignment_line = next(line for line in result.stderr.splitlines() if 'T_odom_world' in line)
    rotation = ast.literal_eval(alignment_line.split("T_odom_world = ")[1])
    for i in range(3):
        assert abs(rotation[i][i] - 1.0) < 1e-3, rotation
    assert abs(rotation[2][3]) < 0.02, rotation


def test_demo_refuses_a_folder_that_is_not_a_sequence(tmp_path):
    result = subprocess.run([sys.executable, '-P', '-m', 'gpt4scene_ros.ros.demo', str(tmp_path)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    assert str(tmp_path) in result.stderr
