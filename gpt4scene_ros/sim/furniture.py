"""Furniture and tabletop items of the synthetic scene, as meshes with random dimensions.

Each builder draws its dimensions (and, for the table and chairs, its place) from
``rng`` and returns mesh parts (see ``gpt4scene_ros.sim.shapes``); where it stands
in the room is decided by ``gpt4scene_ros.sim.layout``. The draws and their order
are part of the seed's layout. The names with a leading underscore are internal
to ``gpt4scene_ros.sim``.
"""

from __future__ import annotations

import numpy as np

from gpt4scene_ros.sim.scene import _WALL_GAP_M
from gpt4scene_ros.sim.shapes import _box, _cylinder, _Part


def _table(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[_Part]]:
    length, depth, height = rng.uniform(1.2, 1.5), rng.uniform(0.7, 0.85), rng.uniform(0.72, 0.76)
    cx, cy = rng.uniform(-0.25, 0.25), rng.uniform(-0.15, 0.15)
    lo = np.array([cx - length / 2, cy - depth / 2, 0.0])
    hi = np.array([cx + length / 2, cy + depth / 2, height])
    top = 0.04
    leg = 0.05
    parts = [_box([lo[0], lo[1], height - top], hi)]
    for x in (lo[0] + 0.04, hi[0] - 0.04 - leg):
        for y in (lo[1] + 0.04, hi[1] - 0.04 - leg):
            parts.append(_box([x, y, 0.0], [x + leg, y + leg, height - top]))
    return lo, hi, parts


def _chair(
    rng: np.random.Generator, table_lo: np.ndarray, table_hi: np.ndarray, side: int
) -> tuple[np.ndarray, np.ndarray, list[_Part]]:
    width, depth = rng.uniform(0.42, 0.48), rng.uniform(0.42, 0.48)
    seat, back = rng.uniform(0.43, 0.47), rng.uniform(0.85, 0.95)
    slack = (table_hi[0] - table_lo[0]) / 2 - width / 2 - 0.05
    cx = (table_lo[0] + table_hi[0]) / 2 + rng.uniform(-slack, slack)
    gap = rng.uniform(0.08, 0.2)
    if side > 0:
        y0 = table_hi[1] + gap
    else:
        y0 = table_lo[1] - gap - depth
    lo = np.array([cx - width / 2, y0, 0.0])
    hi = np.array([cx + width / 2, y0 + depth, back])
    leg, slab = 0.035, 0.04
    parts = [_box([lo[0], lo[1], seat - slab], [hi[0], hi[1], seat])]
    for x in (lo[0], hi[0] - leg):
        for y in (lo[1], hi[1] - leg):
            parts.append(_box([x, y, 0.0], [x + leg, y + leg, seat - slab]))
    # Backrest on the side away from the table.
    if side > 0:
        parts.append(_box([lo[0], hi[1] - slab, seat], [hi[0], hi[1], back]))
    else:
        parts.append(_box([lo[0], lo[1], seat], [hi[0], lo[1] + slab, back]))
    return lo, hi, parts


def _against_y_wall(
    rng: np.random.Generator, half_x: float, half_y: float, width: float, depth: float, side: int
) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-half_x + 0.1 + width / 2, half_x - 0.1 - width / 2)
    if side > 0:
        return np.array([x - width / 2, half_y - _WALL_GAP_M - depth]), np.array([x + width / 2, half_y - _WALL_GAP_M])
    return np.array([x - width / 2, -half_y + _WALL_GAP_M]), np.array([x + width / 2, -half_y + _WALL_GAP_M + depth])


def _storage(rng: np.random.Generator, half_x: float, half_y: float, side: int) -> tuple[str, list[_Part]]:
    """Build a cabinet (closed box with handles) or an open shelf against a y wall."""
    if rng.random() < 0.5:
        width, depth, height = rng.uniform(0.8, 1.1), rng.uniform(0.4, 0.44), rng.uniform(0.8, 1.0)
        lo2, hi2 = _against_y_wall(rng, half_x, half_y, width, depth - 0.02, side)
        body_lo, body_hi = np.array([lo2[0], lo2[1], 0.0]), np.array([hi2[0], hi2[1], height])
        parts = [_box(body_lo, body_hi)]
        front_y = body_lo[1] if side > 0 else body_hi[1]
        out = -0.02 if side > 0 else 0.02
        mid = (body_lo[0] + body_hi[0]) / 2
        for x in (mid - 0.06, mid + 0.04):
            y_lo, y_hi = sorted((front_y, front_y + out))
            parts.append(_box([x, y_lo, height * 0.55], [x + 0.02, y_hi, height * 0.75]))
        return 'cabinet', parts
    width, depth, height = rng.uniform(0.8, 1.0), rng.uniform(0.3, 0.35), rng.uniform(1.6, 1.9)
    lo2, hi2 = _against_y_wall(rng, half_x, half_y, width, depth, side)
    board = 0.02
    parts = [
        _box([lo2[0], lo2[1], 0.0], [lo2[0] + board, hi2[1], height]),
        _box([hi2[0] - board, lo2[1], 0.0], [hi2[0], hi2[1], height]),
    ]
    if side > 0:
        parts.append(_box([lo2[0] + board, hi2[1] - board, 0.0], [hi2[0] - board, hi2[1], height]))
    else:
        parts.append(_box([lo2[0] + board, lo2[1], 0.0], [hi2[0] - board, lo2[1] + board, height]))
    for z in np.linspace(0.05, height - board, 5):
        parts.append(_box([lo2[0] + board, lo2[1], z], [hi2[0] - board, hi2[1], z + board]))
    return 'shelf', parts


def _seating(rng: np.random.Generator, half_x: float, half_y: float, side: int) -> tuple[str, list[_Part]]:
    """Build a sofa or a single bed with its long side against an x wall."""
    sofa = rng.random() < 0.5
    length = rng.uniform(1.6, 2.0) if sofa else rng.uniform(1.9, 2.0)
    depth = rng.uniform(0.8, 0.9) if sofa else rng.uniform(0.9, 1.0)
    y = rng.uniform(-half_y + 0.1 + length / 2, half_y - 0.1 - length / 2)
    if side > 0:
        x0, x1 = half_x - _WALL_GAP_M - depth, half_x - _WALL_GAP_M
    else:
        x0, x1 = -half_x + _WALL_GAP_M, -half_x + _WALL_GAP_M + depth
    y0, y1 = y - length / 2, y + length / 2
    wall_x0, wall_x1 = (x1 - 0.18, x1) if side > 0 else (x0, x0 + 0.18)
    if sofa:
        back, arm = rng.uniform(0.8, 0.9), 0.15
        parts = [
            _box([x0, y0 + arm, 0.0], [x1, y1 - arm, 0.42]),
            _box([wall_x0, y0 + arm, 0.42], [wall_x1, y1 - arm, back]),
            _box([x0, y0, 0.0], [x1, y0 + arm, 0.6]),
            _box([x0, y1 - arm, 0.0], [x1, y1, 0.6]),
        ]
        return 'sofa', parts
    head = 0.06
    inset = 0.03
    parts = [
        _box([x0, y0 + head, 0.0], [x1, y1, 0.3]),
        _box([x0 + inset, y0 + head + inset, 0.3], [x1 - inset, y1 - inset, 0.5]),
        _box([x0, y0, 0.0], [x1, y0 + head, 0.95]),
    ]
    return 'bed', parts


def _mug(rng: np.random.Generator, x: float, y: float, z: float) -> list[_Part]:
    radius, height = rng.uniform(0.04, 0.045), rng.uniform(0.08, 0.1)
    direction = rng.integers(4)
    axis, sign = direction % 2, (1 if direction < 2 else -1)
    lo = np.array([x, y, z + 0.25 * height])
    hi = np.array([x, y, z + 0.8 * height])
    lo[axis] = hi[axis] = (x, y)[axis] + sign * radius
    if sign > 0:
        lo[axis] -= 0.005
        hi[axis] += 0.025
    else:
        lo[axis] -= 0.025
        hi[axis] += 0.005
    lo[1 - axis] -= 0.006
    hi[1 - axis] += 0.006
    return [_cylinder(x, y, z, z + height, radius), _box(lo, hi)]


def _bottle(rng: np.random.Generator, x: float, y: float, z: float) -> list[_Part]:
    radius, body = rng.uniform(0.035, 0.04), rng.uniform(0.15, 0.19)
    neck = rng.uniform(0.06, 0.08)
    return [
        _cylinder(x, y, z, z + body, radius),
        _cylinder(x, y, z + body, z + body + neck, 0.014),
        _cylinder(x, y, z + body + neck, z + body + neck + 0.02, 0.016),
    ]
