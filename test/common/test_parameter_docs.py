"""docs/parameters.md is the generated reference of every node's parameters, and up to date."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gpt4scene_ros.common.settings.reference import NODE_SETTINGS, parameter_reference

DOCS = Path(__file__).resolve().parents[2] / 'docs' / 'parameters.md'


def test_the_parameter_reference_is_up_to_date():
    assert DOCS.read_text() == parameter_reference(), (
        'docs/parameters.md is stale: run `python -P scripts/make_parameter_docs.py` and commit it'
    )


def test_every_parameter_of_every_node_is_documented_once_under_its_node():
    sections = DOCS.read_text().split('\n## ')[1:]
    by_node = {section.split('\n', 1)[0]: section for section in sections}
    assert set(by_node) == set(NODE_SETTINGS)
    for node, classes in NODE_SETTINGS.items():
        for settings_class in classes:
            for spec in dataclasses.fields(settings_class):
                assert by_node[node].count(f'| `{spec.name}` |') == 1, f'{node}.{spec.name}'
                assert spec.metadata['description'], f'{node}.{spec.name} has no description'
