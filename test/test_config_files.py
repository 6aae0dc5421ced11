"""Launch file and YAML configs, checked statically (``launch`` is not pip-installable)
and, for the invalid example config, by starting the nodes with it."""

from __future__ import annotations

import ast
import configparser
import dataclasses
import subprocess

import pytest
import yaml
from conftest import REPO_ROOT, executable

from gpt4scene_ros.core.config import MappingConfig, MappingNodeConfig, PlayerConfig, QueryConfig

LAUNCH_FILE = REPO_ROOT / 'launch' / 'gpt4scene.launch.py'
SETTINGS_BY_NODE = {'player': (PlayerConfig,), 'mapping_node': (MappingConfig, MappingNodeConfig),
                    'query_node': (QueryConfig,)}


def entry_points() -> set:
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / 'setup.cfg')
    lines = parser['options.entry_points']['console_scripts'].strip().splitlines()
    return {line.split('=')[0].strip() for line in lines}


def launch_calls(name: str) -> list:
    tree = ast.parse(LAUNCH_FILE.read_text())
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == name]


def keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def test_every_launched_executable_is_an_entry_point_of_this_package():
    nodes = launch_calls('Node')
    assert len(nodes) >= 2
    package = ast.literal_eval(next(n for n in ast.walk(ast.parse(LAUNCH_FILE.read_text()))
                                    if isinstance(n, ast.Assign) and n.targets[0].id == 'PACKAGE').value)
    assert package == 'gpt4scene_ros'
    for call in nodes:
        assert getattr(keyword(call, 'package'), 'id', None) == 'PACKAGE'
        name = ast.literal_eval(keyword(call, 'executable'))
        assert name in entry_points(), f'{name} is not a console_scripts entry point in setup.cfg'
        assert ast.literal_eval(keyword(call, 'name')) in SETTINGS_BY_NODE


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
    used = {ast.literal_eval(call.args[0]) for call in launch_calls('LaunchConfiguration')}
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


@pytest.mark.parametrize('node_name, parameter', [('player', 'playback_mode'), ('query_node', 'default_num_frames'),
                                                  ('mapping_node', 'voxel_size_m')])
def test_nodes_refuse_the_invalid_example_config(node_name, parameter, tmp_path):
    params_file = REPO_ROOT / 'config' / 'examples' / 'invalid.yaml'
    result = subprocess.run([executable(node_name), '--ros-args', '--params-file', str(params_file),
                             '-p', f'data_dir:={tmp_path}'],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert parameter in result.stderr + result.stdout
