"""The QoS profiles of this package, each built once.

Map outputs, the scene snapshot and the player's static transform are
*latched* (reliable, transient local, depth 1, as map servers publish): a
viewer or a query service that starts late, or after the robot stopped,
still gets the current state. Every subscriber of a latched topic uses the
same profile, or it would not receive the stored message.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
"""Reliable, transient local, depth 1: the last message stays for late subscribers."""


def reliable(depth: int) -> QoSProfile:
    """Reliable, volatile, keeping ``depth`` messages (the player's outputs, test and benchmark subscribers)."""
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)


def sensor_input(input_qos: str, depth: int) -> QoSProfile:
    """The mapping node's sensor subscriptions: ``sensor_data`` (best effort, as camera drivers publish) or
    ``reliable``; both keep ``depth`` messages."""
    reliability = qos_profile_sensor_data.reliability if input_qos == 'sensor_data' else ReliabilityPolicy.RELIABLE
    return QoSProfile(depth=depth, reliability=reliability)
