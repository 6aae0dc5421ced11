"""One setting = one dataclass field (default, description, rules); checked in ``__post_init__``."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def setting(
    default: Any,
    description: str,
    *,
    choices: tuple = (),
    minimum: float | None = None,
    maximum: float | None = None,
    greater_than: float | None = None,
    less_than: float | None = None,
    read_only: bool = False,
) -> Any:
    """A dataclass field carrying its description and validation rules.

    ``minimum``/``maximum`` are inclusive bounds, ``greater_than``/``less_than`` exclusive ones.
    """
    return field(
        default=default,
        metadata={
            'description': description,
            'choices': tuple(choices),
            'minimum': minimum,
            'maximum': maximum,
            'greater_than': greater_than,
            'less_than': less_than,
            'read_only': read_only,
        },
    )


def check_settings(config: DataclassInstance) -> None:
    """Validate every field of a settings dataclass against its metadata."""
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        rules = spec.metadata
        where = f'{type(config).__name__}.{spec.name}={value!r}'
        expected_type = type(spec.default)
        if expected_type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
            object.__setattr__(config, spec.name, value)
        if expected_type is tuple and isinstance(value, (list, tuple)):
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
                raise ValueError(f'{where}: expected finite numbers')
            value = tuple(float(v) for v in value)
            object.__setattr__(config, spec.name, value)
        if type(value) is not expected_type:
            raise ValueError(f'{where}: expected {expected_type.__name__}')
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f'{where}: must be finite')
        if rules.get('choices') and value not in rules['choices']:
            raise ValueError(f'{where}: must be one of {list(rules["choices"])}')
        if rules.get('minimum') is not None and value < rules['minimum']:
            raise ValueError(f'{where}: must be >= {rules["minimum"]}')
        if rules.get('maximum') is not None and value > rules['maximum']:
            raise ValueError(f'{where}: must be <= {rules["maximum"]}')
        if rules.get('greater_than') is not None and value <= rules['greater_than']:
            raise ValueError(f'{where}: must be > {rules["greater_than"]}')
        if rules.get('less_than') is not None and value >= rules['less_than']:
            raise ValueError(f'{where}: must be < {rules["less_than"]}')
