"""``diagnostic_msgs/DiagnosticArray`` of one status, as the nodes publish on ``/diagnostics``."""

from __future__ import annotations

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


def diagnostic_array(
    stamp: Time, name: str, hardware_id: str, level: bytes, message: str, values: dict
) -> DiagnosticArray:
    """One status (``level``: ``DiagnosticStatus.OK``/``WARN``/``ERROR``) with its key-value pairs as strings."""
    status = DiagnosticStatus(
        name=name,
        hardware_id=hardware_id,
        level=level,
        message=message,
        values=[KeyValue(key=key, value=str(value)) for key, value in values.items()],
    )
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
