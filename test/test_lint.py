"""Code style is a test, as in ROS packages: ruff lint and format (settings in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT

PATHS = ['gpt4scene_ros', 'test', 'launch', 'bench', 'scripts']


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-m', 'ruff', *args, '--no-cache', *PATHS], cwd=REPO_ROOT, capture_output=True, text=True
    )


def test_ruff_check_is_clean():
    result = ruff('check', '--output-format', 'concise')
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_leaves_the_code_as_it_is():
    result = ruff('format', '--check', '--diff')
    assert result.returncode == 0, 'run `ruff format` on:\n' + result.stdout[-20000:] + result.stderr
