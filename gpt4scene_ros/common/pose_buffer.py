"""A short, time-ordered history of poses with interpolated lookup.

The mapping node feeds it odometry (``T_world_base`` or ``T_world_camera``)
and asks for the pose at each image's stamp. Poses are 4x4 rigid transforms;
stamps are seconds (float). Lookups interpolate the translation linearly and
the rotation by slerp between the two poses that bracket the stamp.

Thread safe: one lock guards every method, so an odometry callback may add
while a timer looks up.
"""

from __future__ import annotations

import bisect
import math
import threading

import numpy as np

from gpt4scene_ros.common.frames import check_rigid_transform
from gpt4scene_ros.common.transforms import make_transform, matrix_from_quaternion, quaternion_from_matrix, slerp

BACKWARDS_TOLERANCE_S = 1e-3
"""A stamp older than the newest by more than this means time jumped back (bag loop): the buffer resets.
Older stamps within it are out-of-order arrivals and are inserted in place."""


class PoseLookupError(LookupError):
    """No pose can be given for a stamp; ``reason`` says why.

    Reasons: ``'empty'`` (nothing buffered), ``'before_buffer'`` (older than the
    oldest pose: pruned or never received), ``'after_buffer'`` (newer than the
    newest pose: the caller may retry once newer poses arrived), ``'gap'`` (the
    bracketing poses are more than ``max_gap_s`` apart).
    """

    REASONS = ('empty', 'before_buffer', 'after_buffer', 'gap')

    def __init__(self, reason: str, message: str) -> None:
        if reason not in self.REASONS:
            raise ValueError(f'PoseLookupError reason must be one of {self.REASONS}, got {reason!r}')
        super().__init__(message)
        self.reason = reason


def _as_float(value: float | np.integer | np.floating) -> float:
    """``float(value)``, with an int too large for a float (``10**400``) as infinity instead of OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _positive_seconds(name: str, value: object, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f'PoseBuffer {name} must be a number of seconds, got {value!r}')
    value = _as_float(value)
    if not math.isfinite(value) or value < 0.0 or (value == 0.0 and not allow_zero):
        rule = '>= 0' if allow_zero else '> 0'
        raise ValueError(f'PoseBuffer {name} must be finite and {rule}, got {value!r}')
    return value


class PoseBuffer:
    """Poses of the last ``max_age_s`` seconds, looked up by stamp.

    - ``max_age_s``: poses older than the newest stamp minus this are dropped.
    - ``max_gap_s``: a lookup between two poses further apart than this fails
      with reason ``'gap'`` (odometry dropped out; interpolating would guess).
    - ``max_extrapolation_s``: a stamp at most this far after the newest pose
      gets the newest pose unchanged (held, not extrapolated with a velocity).
      The default 0.0 makes every stamp after the newest ``'after_buffer'``.
    """

    def __init__(self, max_age_s: float = 10.0, max_gap_s: float = 0.25, max_extrapolation_s: float = 0.0) -> None:
        self.max_age_s = _positive_seconds('max_age_s', max_age_s)
        self.max_gap_s = _positive_seconds('max_gap_s', max_gap_s)
        self.max_extrapolation_s = _positive_seconds('max_extrapolation_s', max_extrapolation_s, allow_zero=True)
        self._lock = threading.Lock()
        self._stamps: list[float] = []
        self._poses: list[np.ndarray] = []
        self._quaternions: list[np.ndarray] = []

    def __len__(self) -> int:
        with self._lock:
            return len(self._stamps)

    @property
    def newest_stamp_s(self) -> float | None:
        """Stamp of the newest pose, or None when the buffer is empty."""
        with self._lock:
            return self._stamps[-1] if self._stamps else None

    @property
    def oldest_stamp_s(self) -> float | None:
        """Stamp of the oldest pose, or None when the buffer is empty."""
        with self._lock:
            return self._stamps[0] if self._stamps else None

    def clear(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self._stamps.clear()
        self._poses.clear()
        self._quaternions.clear()

    def add(self, stamp_s: float, T: np.ndarray) -> str:
        """Store the pose ``T`` at ``stamp_s``; return ``'added'`` or ``'reset'``.

        Raises ValueError for a non-finite stamp or a pose that is not a finite
        rigid 4x4 transform (the buffer is left unchanged). ``'reset'`` means
        the stamp was older than the newest one by more than
        ``BACKWARDS_TOLERANCE_S`` (time jumped back): the buffer was cleared and
        holds only this pose. A stamp equal to a buffered one replaces its pose.
        """
        if (
            isinstance(stamp_s, bool)
            or not isinstance(stamp_s, (int, float, np.integer, np.floating))
            or not math.isfinite(_as_float(stamp_s))
        ):
            raise ValueError(f'pose stamp must be a finite number of seconds, got {stamp_s!r}')
        stamp_s = float(stamp_s)
        T = check_rigid_transform(T, f'pose at stamp {stamp_s:.9f}').copy()
        q = quaternion_from_matrix(T[:3, :3])
        with self._lock:
            result = 'added'
            if self._stamps and stamp_s < self._stamps[-1] - BACKWARDS_TOLERANCE_S:
                self._clear()
                result = 'reset'
            index = bisect.bisect_left(self._stamps, stamp_s)
            if index < len(self._stamps) and self._stamps[index] == stamp_s:
                self._poses[index], self._quaternions[index] = T, q
            else:
                self._stamps.insert(index, stamp_s)
                self._poses.insert(index, T)
                self._quaternions.insert(index, q)
            expired = bisect.bisect_left(self._stamps, self._stamps[-1] - self.max_age_s)
            if expired:
                del self._stamps[:expired], self._poses[:expired], self._quaternions[:expired]
            return result

    def lookup(self, stamp_s: float) -> np.ndarray:
        """Pose at ``stamp_s`` (a new 4x4 array); raises :class:`PoseLookupError` when there is none."""
        if (
            isinstance(stamp_s, bool)
            or not isinstance(stamp_s, (int, float, np.integer, np.floating))
            or not math.isfinite(_as_float(stamp_s))
        ):
            raise ValueError(f'lookup stamp must be a finite number of seconds, got {stamp_s!r}')
        stamp_s = float(stamp_s)
        with self._lock:
            stamps = self._stamps
            if not stamps:
                raise PoseLookupError('empty', f'no pose buffered (lookup at {stamp_s:.6f} s)')
            if stamp_s < stamps[0]:
                raise PoseLookupError(
                    'before_buffer',
                    f'stamp {stamp_s:.6f} s is {stamps[0] - stamp_s:.6f} s before the oldest '
                    f'buffered pose ({stamps[0]:.6f} s; buffer keeps {self.max_age_s} s)',
                )
            if stamp_s >= stamps[-1]:
                if stamp_s - stamps[-1] <= self.max_extrapolation_s:
                    return self._poses[-1].copy()
                raise PoseLookupError(
                    'after_buffer',
                    f'stamp {stamp_s:.6f} s is {stamp_s - stamps[-1]:.6f} s after the newest '
                    f'buffered pose ({stamps[-1]:.6f} s)',
                )
            index = bisect.bisect_right(stamps, stamp_s)  # stamps[index - 1] <= stamp_s < stamps[index]
            t0, t1 = stamps[index - 1], stamps[index]
            if t0 == stamp_s:
                return self._poses[index - 1].copy()
            if t1 - t0 > self.max_gap_s:
                raise PoseLookupError(
                    'gap',
                    f'poses around {stamp_s:.6f} s are {t1 - t0:.6f} s apart ({t0:.6f} s to {t1:.6f} s), '
                    f'more than max_gap_s = {self.max_gap_s}',
                )
            alpha = (stamp_s - t0) / (t1 - t0)
            T0, T1 = self._poses[index - 1], self._poses[index]
            q0, q1 = self._quaternions[index - 1], self._quaternions[index]
        translation = (1.0 - alpha) * T0[:3, 3] + alpha * T1[:3, 3]
        return make_transform(matrix_from_quaternion(slerp(q0, q1, alpha)), translation)
