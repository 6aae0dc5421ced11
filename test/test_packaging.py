"""Release metadata agrees with itself: versions, console scripts, license, changelog, typing marker.

Nothing here imports the package: script targets are checked by parsing their source.
"""

from __future__ import annotations

import ast
import re
import tomllib
import xml.etree.ElementTree as ET

import pytest
from conftest import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / 'pyproject.toml').read_text())
SCRIPTS = PYPROJECT['project']['scripts']


def package_xml_version() -> str:
    return ET.parse(REPO_ROOT / 'package.xml').getroot().findtext('version').strip()


def test_pyproject_version_is_package_xml_version():
    assert PYPROJECT['project']['version'] == package_xml_version()


def test_console_scripts_are_written_as_cmake_reads_them():
    """CMakeLists.txt installs the console scripts from the lines of [project.scripts] that read
    ``name = "module:function"``: every entry must be such a line, or colcon would not install it."""
    text = (REPO_ROOT / 'pyproject.toml').read_text()
    table = text.split('\n[project.scripts]', 1)[1].split('\n[', 1)[0]
    entry = re.compile(r'^[ \t]*([A-Za-z0-9_-]+)[ \t]*=[ \t]*["\']([A-Za-z0-9_.]+:[A-Za-z0-9_]+)["\'][ \t]*(#.*)?$')
    lines = dict(m.group(1, 2) for m in map(entry.match, table.splitlines()) if m)
    assert lines == SCRIPTS
    assert SCRIPTS, 'no console scripts'


@pytest.mark.parametrize('name', sorted(SCRIPTS))
def test_console_script_target_is_a_function_in_the_source_tree(name):
    module, _, function = SCRIPTS[name].partition(':')
    assert module.split('.')[0] == 'gpt4scene_ros', f'{name}: {module} is not in this package'
    base = REPO_ROOT.joinpath(*module.split('.'))
    candidates = [base.with_suffix('.py'), base / '__init__.py']
    path = next((p for p in candidates if p.is_file()), None)
    assert path is not None, f'{name}: no module file for {module} (looked for {", ".join(map(str, candidates))})'
    defined = {
        node.name
        for node in ast.parse(path.read_text()).body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    assert function in defined, f'{name}: {path.relative_to(REPO_ROOT)} defines no top-level function {function}()'


def test_license_is_the_apache_2_0_text():
    text = (REPO_ROOT / 'LICENSE').read_text()
    words = ' '.join(text.split())
    for phrase in (
        'Apache License Version 2.0, January 2004',
        'http://www.apache.org/licenses/',
        'TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION',
        'END OF TERMS AND CONDITIONS',
        'APPENDIX: How to apply the Apache License to your work.',
        'Licensed under the Apache License, Version 2.0 (the "License");',
    ):
        assert phrase in words, phrase
    sections = re.findall(r'^\s*(\d)\. ([A-Z][^.]*)\.', text, re.MULTILINE)
    assert [title for _, title in sections] == [
        'Definitions',
        'Grant of Copyright License',
        'Grant of Patent License',
        'Redistribution',
        'Submission of Contributions',
        'Trademarks',
        'Disclaimer of Warranty',
        'Limitation of Liability',
        'Accepting Warranty or Additional Liability',
    ]
    assert PYPROJECT['project']['license'] == 'Apache-2.0'
    assert ET.parse(REPO_ROOT / 'package.xml').getroot().findtext('license').strip() == 'Apache-2.0'


def test_changelog_newest_entry_is_the_current_version():
    lines = (REPO_ROOT / 'CHANGELOG.rst').read_text().splitlines()
    assert 'Changelog for package gpt4scene_ros' in lines[:3]
    headings = [
        (i, m.group(1))
        for i, line in enumerate(lines)
        if (m := re.fullmatch(r'(\d+\.\d+\.\d+) \(\d{4}-\d{2}-\d{2}\)', line))
    ]
    assert headings, 'no entry "X.Y.Z (YYYY-MM-DD)" in CHANGELOG.rst'
    first, version = headings[0]
    assert version == PYPROJECT['project']['version']
    assert re.fullmatch(r'-+', lines[first + 1]) and len(lines[first + 1]) == len(lines[first]), (
        'an entry heading is underlined with dashes of its length'
    )


def test_package_is_marked_typed():
    assert (REPO_ROOT / 'gpt4scene_ros' / 'py.typed').is_file()
    assert 'py.typed' in PYPROJECT['tool']['setuptools']['package-data']['gpt4scene_ros']
