"""The package builds the way ROS users build it (colcon), and pyproject.toml installs the ROS-free core
with pip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT


def tracked_copy(target: Path) -> Path:
    files = subprocess.run(
        ['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for relative in files:
        source = REPO_ROOT / relative
        if source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)
    return target


def test_the_colcon_build_gives_interfaces_executables_and_share_files():
    """Checks the colcon build that scripts/setup made (on CI, of a clean clone); a second build here would
    cost a minute of CI for the same result."""
    install_base = REPO_ROOT / '.build' / 'install'
    assert (install_base / 'local_setup.bash').is_file(), f'no colcon install at {install_base}: run scripts/setup'
    install = install_base / 'gpt4scene_ros'
    for name in ('player', 'query_node', 'gpt4scene-make-scene'):
        assert os.access(install / 'lib' / 'gpt4scene_ros' / name, os.X_OK), name
    for relative in ('launch/gpt4scene.launch.py', 'config/gpt4scene.yaml', 'config/fastdds.xml', 'package.xml'):
        assert (install / 'share' / 'gpt4scene_ros' / relative).is_file(), relative
    assert (install / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'gpt4scene_ros').exists()
    check = (
        'import gpt4scene_ros, gpt4scene_ros.nodes.query_node\n'
        'from gpt4scene_ros.srv import SceneQuery, FilePath\n'
        'from gpt4scene_ros.msg import ObjectInstance, ObjectInstanceArray\n'
        'assert SceneQuery.Request.TASK_MULTI_GROUND == "multi_ground"\n'
        'print(gpt4scene_ros.__file__)'
    )
    venv = Path(sys.prefix)
    env = {**os.environ, 'AMENT_PREFIX_PATH': str(venv), 'CMAKE_PREFIX_PATH': str(venv), 'PYTHONPATH': ''}
    result = subprocess.run(
        ['bash', '-c', f"source {install_base}/local_setup.bash && cd / && python -c '{check}'"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(install))


def test_pip_installs_the_ros_free_core(tmp_path):
    source = tracked_copy(tmp_path / 'src')
    target = tmp_path / 'site'
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'pip',
            'install',
            '-q',
            '--no-deps',
            '--no-build-isolation',
            '--target',
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    check = (
        'import sys; sys.modules["rclpy"] = None\n'
        'import gpt4scene_ros.sim.writer, gpt4scene_ros.tools.make_scene, gpt4scene_ros.io.folders\n'
        'print(gpt4scene_ros.io.folders.__file__)'
    )
    run = subprocess.run(
        [sys.executable, '-c', check],
        env={**os.environ, 'PYTHONPATH': str(target)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().startswith(str(target))
    assert (target / 'bin' / 'gpt4scene-make-scene').exists()
