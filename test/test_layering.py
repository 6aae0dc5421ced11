"""The package's shape: one folder per stage, data flowing down the list, ROS only at the edge, no import cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / 'gpt4scene_ros'
STAGES = ('common', 'io', 'mapping', 'objects', 'query', 'eval', 'sim', 'ros', 'nodes', 'tools')
"""In data-flow order: a stage may import itself and the stages before it, never one after it."""
ROS_STAGES = ('ros', 'nodes', 'tools')
ROS_MODULE_PREFIXES = (
    'rclpy',
    'rcl_interfaces',
    'builtin_interfaces',
    'launch',
    'tf2_ros',
    'cv_bridge',
    'message_filters',
    'ament_index_python',
    'rosidl_runtime_py',
)
MAX_MODULE_LINES = 520
MAX_MODULES_PER_FOLDER = 12


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob('*.py')}


def imports(path: Path) -> list[tuple[str, int]]:
    """Every module ``path`` imports, at module level or inside functions, as absolute names with line numbers."""
    name = module_name(path)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[: len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            found.append((base, node.lineno))
            # `from package import module` imports the module
            found.extend(
                (f'{base}.{alias.name}', node.lineno) for alias in node.names if f'{base}.{alias.name}' in MODULES
            )
    return found


def stage_of(module: str) -> str | None:
    parts = module.split('.')
    return parts[1] if len(parts) > 1 and parts[0] == 'gpt4scene_ros' and parts[1] in STAGES else None


def is_ros(module: str) -> bool:
    root = module.split('.')[0]
    return (
        root.startswith(ROS_MODULE_PREFIXES)
        or root.endswith(('_msgs', '_srvs'))
        or module.startswith(('gpt4scene_ros.msg', 'gpt4scene_ros.srv'))
    )


def test_every_module_is_in_a_stage_folder():
    loose = [
        name
        for name in MODULES
        if name != 'gpt4scene_ros' and stage_of(name) is None and name.split('.')[1] not in ('msg', 'srv')
    ]
    assert not loose, f'modules outside the stage folders {STAGES}: {loose}'


def test_no_stage_imports_a_later_stage():
    offenders = []
    for name, path in MODULES.items():
        stage = stage_of(name)
        if stage is None:
            continue
        for imported, line in imports(path):
            target = stage_of(imported)
            if target is not None and STAGES.index(target) > STAGES.index(stage):
                offenders.append(f'{path.relative_to(REPO_ROOT)}:{line}: {stage}/ imports {imported} ({target}/)')
    assert not offenders, '\n'.join(offenders)


def test_ros_is_imported_only_in_ros_nodes_and_tools():
    offenders = []
    for name, path in MODULES.items():
        if stage_of(name) in ROS_STAGES:
            continue
        offenders.extend(
            f'{path.relative_to(REPO_ROOT)}:{line}: {imported}' for imported, line in imports(path) if is_ros(imported)
        )
    assert not offenders, '\n'.join(offenders)


def test_no_import_cycles_function_level_imports_included():
    graph = {
        name: sorted({imported for imported, _ in imports(path) if imported in MODULES and imported != name})
        for name, path in MODULES.items()
    }
    cycles, state = [], {}

    def visit(module, trail):
        state[module] = 'open'
        for target in graph[module]:
            if state.get(target) == 'open':
                cycles.append(trail[trail.index(target) :] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[module] = 'done'

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, 'import cycles: ' + '; '.join(' -> '.join(cycle) for cycle in cycles)


def test_modules_and_folders_stay_small():
    long = [
        f'{path.relative_to(REPO_ROOT)}: {n} lines'
        for path in MODULES.values()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    crowded = [
        f'{folder.relative_to(REPO_ROOT)}: {n} modules'
        for folder in [PACKAGE, *PACKAGE.rglob('*/')]
        if folder.is_dir()
        and folder.name != '__pycache__'
        and (n := len([p for p in folder.glob('*.py') if p.name != '__init__.py'])) > MAX_MODULES_PER_FOLDER
    ]
    assert not long and not crowded, long + crowded


def test_ros_free_stages_load_without_rclpy():
    modules = sorted(name for name in MODULES if stage_of(name) not in (None, *ROS_STAGES))
    code = (
        f'import sys; sys.modules["rclpy"] = None\n'
        f'for m in {modules!r}: __import__(m)\n'
        f'assert not any(k.startswith(("rclpy", "sensor_msgs")) and sys.modules[k] for k in sys.modules)'
    )
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
