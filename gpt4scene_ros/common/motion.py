"""How far a camera moved between two poses, and the one gate that passes a frame only after enough motion.

The map skips frames that barely moved (``min_translation_m``,
``min_rotation_deg``), the object layer keeps a frame as a keyframe candidate
only when it moved or turned enough, and keyframe selection spreads keyframes
by :func:`pose_distance`: all measure motion here. "Turned" is the angle
between the two viewing directions (optical z axes).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def translation_m(T_a: np.ndarray, T_b: np.ndarray) -> float:
    """Distance between the two camera centres, metres."""
    return float(np.linalg.norm(np.asarray(T_a)[:3, 3] - np.asarray(T_b)[:3, 3]))


def viewing_angle_deg(T_a: np.ndarray, T_b: np.ndarray) -> float:
    """Angle between the two viewing directions (camera z axes), degrees."""
    cos_angle = float(np.clip(np.dot(np.asarray(T_a)[:3, 2], np.asarray(T_b)[:3, 2]), -1.0, 1.0))
    return math.degrees(math.acos(cos_angle))


def rotation_angle_deg(T_a: np.ndarray, T_b: np.ndarray) -> float:
    """Angle of the relative rotation between the two poses (viewing direction and roll), degrees."""
    R_a, R_b = np.asarray(T_a)[:3, :3], np.asarray(T_b)[:3, :3]
    cos_angle = (np.trace(R_a.T @ R_b) - 1.0) / 2.0
    return math.degrees(math.acos(min(1.0, max(-1.0, float(cos_angle)))))


def pose_distance(T_a: np.ndarray, T_b: np.ndarray) -> float:
    """Metres, with 30 degrees of viewing-direction change counting as 0.5 m."""
    return float(pose_distances(np.asarray(T_a)[None], T_b)[0])


def pose_distances(Ts: np.ndarray, T: np.ndarray) -> np.ndarray:
    """:func:`pose_distance` from each of the (n, 4, 4) poses ``Ts`` to ``T``, as an (n,) array."""
    Ts, T = np.asarray(Ts, dtype=np.float64), np.asarray(T, dtype=np.float64)
    metres = np.linalg.norm(Ts[:, :3, 3] - T[:3, 3], axis=1)
    degrees = np.degrees(np.arccos(np.clip(Ts[:, :3, 2] @ T[:3, 2], -1.0, 1.0)))
    return metres + 0.5 * degrees / 30.0


class MotionGate:
    """Passes a pose when no pose was accepted yet, or when it moved or turned enough since the accepted one.

    ``angle`` measures the turn (:func:`rotation_angle_deg` or
    :func:`viewing_angle_deg`). With ``zero_is_off``, a threshold of 0 takes
    no part (both 0: every pose passes); without it a threshold of 0 is met
    by any pose. :meth:`accept` records the pose the next ones are measured from.
    """

    def __init__(
        self,
        min_translation_m: float,
        min_rotation_deg: float,
        angle: Callable[[np.ndarray, np.ndarray], float] = viewing_angle_deg,
        zero_is_off: bool = True,
    ) -> None:
        self.min_translation_m = float(min_translation_m)
        self.min_rotation_deg = float(min_rotation_deg)
        self._angle = angle
        self._zero_is_off = zero_is_off
        self.last_pose: np.ndarray | None = None

    def passes(self, T: np.ndarray) -> bool:
        last = self.last_pose
        if last is None:
            return True
        if self._zero_is_off:
            if self.min_translation_m <= 0.0 and self.min_rotation_deg <= 0.0:
                return True
            return (self.min_translation_m > 0.0 and translation_m(T, last) >= self.min_translation_m) or (
                self.min_rotation_deg > 0.0 and self._angle(last, T) >= self.min_rotation_deg
            )
        return translation_m(T, last) >= self.min_translation_m or self._angle(last, T) >= self.min_rotation_deg

    def accept(self, T: np.ndarray) -> None:
        self.last_pose = np.array(T, dtype=np.float64)

    def reset(self) -> None:
        self.last_pose = None
