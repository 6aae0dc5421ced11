"""Which settings each node declares, and docs/parameters.md generated from them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.common.settings.mapping import MappingConfig, MappingNodeConfig
from gpt4scene_ros.common.settings.player import PlayerConfig
from gpt4scene_ros.common.settings.query import QueryConfig

NODE_SETTINGS = {
    'player': (PlayerConfig,),
    'mapping_node': (MappingConfig, MappingNodeConfig, InstanceConfig),
    'query_node': (QueryConfig,),
}
"""The settings classes each node declares as ROS parameters, in order."""
UNITS = {
    '_s': 's',
    '_ms': 'ms',
    '_m': 'm',
    '_hz': 'Hz',
    '_px': 'px',
    '_deg': 'degrees',
    '_mb': 'MB',
    '_voxels': 'voxels',
    '_frames': 'frames',
}


def _rule(rules: Mapping[str, Any]) -> str:
    parts = []
    if rules.get('choices'):
        parts.append('one of ' + ', '.join(f'`{c}`' for c in rules['choices']))
    for key, sign in (('minimum', '>='), ('greater_than', '>'), ('maximum', '<='), ('less_than', '<')):
        if rules.get(key) is not None:
            parts.append(f'{sign} {rules[key]:g}')
    if rules.get('read_only'):
        parts.append('read-only')
    return '; '.join(parts)


def parameter_reference() -> str:
    """docs/parameters.md: every node's parameters (name, type, default, unit, rule, description) from the
    settings above; ``scripts/make_parameter_docs.py`` writes it and a test keeps it up to date."""
    lines = [
        '# Parameters',
        '',
        'Generated from `gpt4scene_ros/common/settings/` by `python -P scripts/make_parameter_docs.py`; do not '
        'edit by hand. Floating-point parameters also take integers (`rate_hz:=30`). Values are checked at '
        'start-up: a bad one stops the node with exit code 2 and a message naming the parameter.',
        '',
    ]
    for node, classes in NODE_SETTINGS.items():
        lines += [
            f'## {node}',
            '',
            '| parameter | type | default | unit | rule | description |',
            '|---|---|---|---|---|---|',
        ]
        for settings_class in classes:
            for spec in dataclasses.fields(settings_class):
                default = spec.default
                kind = type(default).__name__ if not isinstance(default, tuple) else 'float[]'
                shown = list(default) if isinstance(default, tuple) else default
                shown = f'`{str(shown).lower() if isinstance(shown, bool) else shown!s}`' if shown != '' else "`''`"
                unit = next((u for suffix, u in UNITS.items() if spec.name.endswith(suffix)), '')
                description = spec.metadata.get('description', '').replace('|', '\\|')
                lines.append(f'| `{spec.name}` | {kind} | {shown} | {unit} | {_rule(spec.metadata)} | {description} |')
        lines.append('')
    return '\n'.join(lines)
