"""``builtin_interfaces/Time`` <-> seconds (a float). Nothing here needs ``rclpy.init()``."""

from __future__ import annotations

from builtin_interfaces.msg import Time


def time_to_msg(seconds: float) -> Time:
    nanoseconds = int(round(seconds * 1e9))
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def time_from_msg(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9
