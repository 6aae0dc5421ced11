"""The core never depends on ROS; ros/ is the only place that knows messages."""

from __future__ import annotations

import ast
import subprocess
import sys

from conftest import REPO_ROOT

CORE = REPO_ROOT / 'gpt4scene_ros' / 'core'
ROS_MODULE_PREFIXES = ('rclpy', 'rcl_interfaces', 'builtin_interfaces', 'launch', 'tf2_ros', 'cv_bridge',
                       'message_filters', 'ament_index_python')


def imported_modules(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield ('.' * node.level) + (node.module or '')


def test_core_sources_import_nothing_from_ros():
    offenders = []
    for path in CORE.rglob('*.py'):
        for module in imported_modules(path):
            root = module.lstrip('.').split('.')[0]
            if root.startswith(ROS_MODULE_PREFIXES) or root.endswith('_msgs') or root.endswith('_srvs') \
                    or module.startswith('..ros') or module.startswith('gpt4scene_ros.ros') \
                    or module in ('..msg', '..srv'):
                offenders.append(f'{path.relative_to(REPO_ROOT)}: {module}')
    assert not offenders, offenders


def test_core_loads_without_rclpy():
    modules = sorted(p.stem for p in CORE.glob('*.py') if p.stem != '__init__')
    code = (f'import sys; sys.modules["rclpy"] = None\n'
            f'for m in {modules!r}: __import__("gpt4scene_ros.core." + m)\n'
            f'assert not any(k.startswith(("rclpy", "sensor_msgs")) and sys.modules[k] for k in sys.modules)')
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
