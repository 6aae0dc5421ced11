"""Type hints of the ROS-free stages: mypy passes over them (settings in pyproject.toml), and every public
function and method there has its parameters and return annotated."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / 'gpt4scene_ros'
TYPED_STAGES = ('common', 'io', 'mapping', 'objects', 'query', 'eval', 'sim')
"""The folders pyproject.toml's [tool.mypy] checks; ros/, nodes/ and tools/ need rclpy and are not checked."""


def test_mypy_passes():
    result = subprocess.run([sys.executable, '-m', 'mypy'], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f'mypy failed (exit code {result.returncode}):\n{result.stdout}{result.stderr}'


def _is_public(name: str) -> bool:
    return not name.startswith('_') or name == '__init__'


def _unannotated(function: ast.FunctionDef | ast.AsyncFunctionDef, is_method: bool) -> list[str]:
    """The parameters of ``function`` without an annotation (``self``/``cls`` of a method excepted), and
    ``->`` when it has no return annotation."""
    args = function.args
    positional = args.posonlyargs + args.args
    static = any(isinstance(d, ast.Name) and d.id == 'staticmethod' for d in function.decorator_list)
    if is_method and not static and positional and positional[0].arg in ('self', 'cls'):
        positional = positional[1:]
    missing = [a.arg for a in positional + args.kwonlyargs if a.annotation is None]
    missing += [f'*{a.arg}' for a in (args.vararg,) if a is not None and a.annotation is None]
    missing += [f'**{a.arg}' for a in (args.kwarg,) if a is not None and a.annotation is None]
    if function.returns is None:
        missing.append('->')
    return missing


def _functions(body: list[ast.stmt], prefix: str = '', in_class: bool = False):
    """(qualified name, line, function, is_method) of the functions and methods defined in ``body``, also under
    ``if``/``try`` (functions nested in functions are local, not public)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f'{prefix}{node.name}', node.lineno, node, in_class
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node.body, f'{prefix}{node.name}.', in_class=True)
        elif isinstance(node, ast.If):
            yield from _functions(node.body + node.orelse, prefix, in_class)
        elif isinstance(node, ast.Try):
            blocks = node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
            yield from _functions(blocks, prefix, in_class)


def test_public_functions_are_fully_annotated():
    modules = sorted(path for stage in TYPED_STAGES for path in (PACKAGE / stage).rglob('*.py'))
    assert modules, f'no modules found under {PACKAGE}'
    problems = []
    for path in modules:
        tree = ast.parse(path.read_text(), filename=str(path))
        for name, line, function, is_method in _functions(tree.body):
            if not _is_public(name.rpartition('.')[2]):
                continue
            missing = _unannotated(function, is_method)
            if missing:
                where = Path(path).relative_to(REPO_ROOT)
                problems.append(f'{where}:{line} {name}: no annotation for {", ".join(missing)}')
    assert not problems, 'public functions with missing type hints:\n' + '\n'.join(problems)


def test_the_annotation_check_finds_what_is_missing():
    tree = ast.parse(
        'def f(a, b: int, *args, key=1, **kwargs): pass\n'
        'class C:\n'
        '    def m(self, x: int) -> None: pass\n'
        '    @staticmethod\n'
        '    def s(self) -> None: pass\n'
        '    def _private(self, y): pass\n'
    )
    found = {name: _unannotated(function, is_method) for name, _, function, is_method in _functions(tree.body)}
    assert found == {
        'f': ['a', 'key', '*args', '**kwargs', '->'],
        'C.m': [],
        'C.s': ['self'],
        'C._private': ['y', '->'],
    }
    assert not _is_public('_private') and _is_public('__init__') and _is_public('m')
