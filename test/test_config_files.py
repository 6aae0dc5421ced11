"""Launch file and YAML configs, checked statically (``launch`` is not pip-installable)
and, for the invalid example config, by starting the nodes with it."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import tomllib

import pytest
import yaml
from conftest import REPO_ROOT, executable

from gpt4scene_ros.common.graph import NODES, PACKAGE
from gpt4scene_ros.common.settings.query import QueryConfig
from gpt4scene_ros.common.settings.reference import NODE_SETTINGS as SETTINGS_BY_NODE

LAUNCH_FILE = REPO_ROOT / 'launch' / 'gpt4scene.launch.py'


def entry_points() -> set:
    return set(tomllib.loads((REPO_ROOT / 'pyproject.toml').read_text())['project']['scripts'])


def launch_calls(name: str) -> list:
    tree = ast.parse(LAUNCH_FILE.read_text())
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == name]


def keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def test_the_launch_file_starts_the_graphs_nodes_which_are_entry_points_of_this_package():
    tree = ast.parse(LAUNCH_FILE.read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == 'gpt4scene_ros.common.graph']
    assert imports and {'NODES', 'PACKAGE'} <= {alias.name for alias in imports[0].names}
    loops = [n for n in ast.walk(tree) if isinstance(n, ast.For) and getattr(n.iter, 'id', None) == 'NODES']
    calls = launch_calls('Node')
    ours = [c for c in calls if getattr(keyword(c, 'package'), 'id', None) == 'PACKAGE']
    assert len(loops) == 1 and len(ours) == 1, 'one Node action per entry of the node list'
    others = [c for c in calls if c not in ours]
    assert [ast.literal_eval(keyword(c, 'package')) for c in others] == ['rviz2'], 'besides ours, only RViz'
    assert 'rviz' in ast.unparse(keyword(others[0], 'condition')), 'RViz starts only with rviz:=true'
    assert len(NODES) >= 3 and PACKAGE == 'gpt4scene_ros'
    for node in NODES:
        assert node.executable in entry_points(), f'{node.executable} is not a console_scripts entry point'
        assert node.name in SETTINGS_BY_NODE


def test_every_file_the_launch_file_references_exists_and_is_installed():
    cmake = (REPO_ROOT / 'CMakeLists.txt').read_text()
    referenced = []
    for call in launch_calls('PathJoinSubstitution'):
        parts = call.args[0].elts
        assert getattr(parts[0], 'id', None) == 'share', 'paths are relative to the package share folder'
        referenced.append('/'.join(ast.literal_eval(part) for part in parts[1:]))
    assert referenced
    for relative in referenced:
        assert (REPO_ROOT / relative).is_file(), f'launch file references missing {relative}'
        assert relative.split('/')[0] in cmake.split('install(DIRECTORY launch')[1].split('DESTINATION')[0]


def test_every_launch_configuration_is_declared():
    declared = {ast.literal_eval(call.args[0]) for call in launch_calls('DeclareLaunchArgument')}
    used = {
        ast.literal_eval(call.args[0])
        for call in launch_calls('LaunchConfiguration')
        if isinstance(call.args[0], ast.Constant)
    }
    tree = ast.parse(LAUNCH_FILE.read_text())
    topic_arguments = next(
        ast.literal_eval(n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign) and getattr(n.targets[0], 'id', None) == 'TOPIC_ARGUMENTS'
    )
    used |= set(topic_arguments)
    assert used <= declared, f'undeclared launch arguments: {used - declared}'


def test_default_params_file_is_valid_for_every_node():
    params = yaml.safe_load((REPO_ROOT / 'config' / 'gpt4scene.yaml').read_text())
    assert set(params) == set(SETTINGS_BY_NODE)
    for node_name, settings_classes in SETTINGS_BY_NODE.items():
        values = params[node_name]['ros__parameters']
        known = {f.name for cls in settings_classes for f in dataclasses.fields(cls)}
        assert set(values) <= known, f'{node_name}: unknown parameters {set(values) - known}'
        for cls in settings_classes:  # each raises ValueError when a value breaks a rule
            names = {f.name for f in dataclasses.fields(cls)}
            cls(**{key: value for key, value in values.items() if key in names})


@pytest.mark.parametrize(
    'node_name, parameter',
    [('player', 'playback_mode'), ('query_node', 'default_num_frames'), ('mapping_node', 'voxel_size_m')],
)
def test_nodes_refuse_the_invalid_example_config(node_name, parameter, tmp_path):
    params_file = REPO_ROOT / 'config' / 'examples' / 'invalid.yaml'
    result = subprocess.run(
        [executable(node_name), '--ros-args', '--params-file', str(params_file), '-p', f'data_dir:={tmp_path}'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert parameter in result.stderr + result.stdout


@pytest.mark.parametrize('name', ['desktop_gpu', 'jetson', 'vllm'])
def test_model_overlays_are_valid_query_node_settings(name):
    params = yaml.safe_load((REPO_ROOT / 'config' / 'vlm' / f'{name}.yaml').read_text())
    assert 'query_node' in params and set(params) <= set(SETTINGS_BY_NODE)
    for node, section in params.items():  # every value is a valid setting of its node (a Jetson's map too)
        values = dict(section['ros__parameters'])
        for settings in SETTINGS_BY_NODE[node]:
            names = {f.name for f in dataclasses.fields(settings)}
            settings(**{k: values.pop(k) for k in list(values) if k in names})
        assert not values, f'{name}.yaml: unknown {node} parameters {sorted(values)}'
    config = QueryConfig(**params['query_node']['ros__parameters'])
    assert config.backend in ('transformers', 'openai') and config.model
    if config.backend == 'openai':
        assert config.base_url.startswith('http') and config.api_key_env


def test_the_launch_file_applies_a_sensor_overlay_the_way_bringup_does():
    declared = {ast.literal_eval(call.args[0]) for call in launch_calls('DeclareLaunchArgument')}
    assert {'sensor', 'rviz', 'use_player', 'data_dir'} <= declared
    # The same loader as gpt4scene-bringup --sensor: one reading of config/sensors/*.yaml.
    assert launch_calls('load_sensor_overlay') and launch_calls('sensor_overlay_path')
    functions = [ast.unparse(keyword(call, 'function')) for call in launch_calls('OpaqueFunction')]
    assert functions == ['launch_nodes'], 'the nodes are made at launch time, after the overlay is read'
