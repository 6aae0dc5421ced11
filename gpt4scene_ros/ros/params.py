"""Settings dataclasses <-> ROS parameters: one declaration per field."""

from __future__ import annotations

import dataclasses

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor


def _descriptor(spec: dataclasses.Field) -> ParameterDescriptor:
    rules = spec.metadata
    description = rules.get('description', '')
    if rules.get('choices'):
        description += f' One of: {", ".join(map(str, rules["choices"]))}.'
    # Floating-point parameters accept integers too (`rate_hz:=30`): typed dynamically; check_settings converts
    # integers and refuses anything else, naming the parameter.
    descriptor = ParameterDescriptor(
        description=description, read_only=bool(rules.get('read_only')), dynamic_typing=_is_float(spec)
    )
    low, high = rules.get('minimum'), rules.get('maximum')
    if low is not None and high is not None:
        if _is_float(spec):
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high))]
        elif isinstance(spec.default, int) and not isinstance(spec.default, bool):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
    return descriptor


def declare_settings(node, settings_class):
    """Declare every field of ``settings_class`` on ``node`` and return the validated settings.

    Raises ValueError (naming the parameter, value and rule) when a value is invalid.
    """
    values = {}
    for spec in dataclasses.fields(settings_class):
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        parameter = node.declare_parameter(spec.name, default, _descriptor(spec))
        value = parameter.value
        values[spec.name] = tuple(value) if isinstance(spec.default, tuple) else value
    return settings_class(**values)


def _is_float(spec: dataclasses.Field) -> bool:
    return isinstance(spec.default, float)
