"""Code style is a test, as in ROS packages (settings in setup.cfg)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT


def test_flake8_is_clean():
    result = subprocess.run([sys.executable, '-m', 'flake8', 'gpt4scene_ros', 'test', 'launch', 'bench', 'scripts'],
                            cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
