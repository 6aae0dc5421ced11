"""Layout of the synthetic room: where the furniture and the clutter stand, as object specs.

:func:`_layout` draws the whole arrangement from one random stream: the table
and its chairs, the wall furniture, the items on the table top and the boxes
along the walls (touching pairs, stacks), plus the heavy-clutter extras. Every
placement is checked against a :class:`_FloorPlan` of the footprints so far.
The result is a list of :class:`_Spec` (label, tags, mesh parts, contacts) that
``gpt4scene_ros.sim.build`` turns into scene objects. The names with a leading
underscore are internal to ``gpt4scene_ros.sim``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from gpt4scene_ros.sim.furniture import _bottle, _chair, _mug, _seating, _storage, _table
from gpt4scene_ros.sim.scene import SyntheticSceneConfig
from gpt4scene_ros.sim.shapes import _box, _cylinder, _footprint_rect, _Part, _Rect, _rect_of, _sphere, _turned

logger = logging.getLogger(__name__)

_T = TypeVar('_T')
_Box = tuple[np.ndarray, np.ndarray]
"""A box's (lo, hi) corners."""

_MAX_PLACEMENT_TRIES = 2000
_CLUTTER_WALL_GAP_M = (0.05, 0.3)
"""Floor clutter stands this far from a wall."""


@dataclass
class _Spec:
    label: str
    tags: tuple[str, ...]
    parts: list
    touching: list = field(default_factory=list)
    on_top_of: int | None = None
    yaw: float = 0.0
    look_alike: int | None = None
    """Index of an object whose colour this one imitates (heavy clutter)."""


class _FloorPlan:
    """Axis-aligned footprints on a rectangle; rejects overlapping placements."""

    def __init__(self, x_min: float, y_min: float, x_max: float, y_max: float, name: str) -> None:
        self.bounds = (x_min, y_min, x_max, y_max)
        self.name = name
        self.rects: list[_Rect] = []

    def is_free(self, rect: _Rect, clearance: float, edge_clearance: float) -> bool:
        x0, y0, x1, y1 = rect
        bx0, by0, bx1, by1 = self.bounds
        if x0 < bx0 + edge_clearance or y0 < by0 + edge_clearance:
            return False
        if x1 > bx1 - edge_clearance or y1 > by1 - edge_clearance:
            return False
        return all(
            x1 + clearance <= r[0] or r[2] + clearance <= x0 or y1 + clearance <= r[1] or r[3] + clearance <= y0
            for r in self.rects
        )

    def place(
        self,
        sample: Callable[[], tuple[_Rect, _T]],
        what: str,
        clearance: float,
        edge_clearance: float = 0.0,
        required: bool = True,
    ) -> _T | None:
        """Call ``sample() -> (rect, payload)`` until the rect is free; return the payload.

        After ``_MAX_PLACEMENT_TRIES`` misses: RuntimeError, or None when the item is not ``required``.
        """
        for _ in range(_MAX_PLACEMENT_TRIES):
            rect, payload = sample()
            if self.is_free(rect, clearance, edge_clearance):
                self.rects.append(rect)
                return payload
        if not required:
            logger.debug('no room for the %s on the %s: left out', what, self.name)
            return None
        raise RuntimeError(f'could not place the {what} on the {self.name} after {_MAX_PLACEMENT_TRIES} tries')


def _tabletop_item(
    plan: _FloorPlan,
    rng: np.random.Generator,
    half_footprint: tuple[float, float, float, float],
    what: str,
    required: bool = True,
) -> tuple[float, float] | None:
    """Place an item of footprint half-extents ``half_footprint`` (from its anchor) on the table plan."""

    def sample() -> tuple[_Rect, tuple[float, float]]:
        x0, y0, x1, y1 = plan.bounds
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        hx_lo, hy_lo, hx_hi, hy_hi = half_footprint
        return (x - hx_lo, y - hy_lo, x + hx_hi, y + hy_hi), (x, y)

    return plan.place(sample, what, clearance=0.04, edge_clearance=0.04, required=required)


def _near_wall_offset(rng: np.random.Generator, half_x: float, half_y: float, size: np.ndarray) -> np.ndarray:
    """Lower corner that puts a footprint of ``size`` (x, y) a little off a random wall."""
    gap = rng.uniform(*_CLUTTER_WALL_GAP_M)
    wall = int(rng.integers(4))
    if wall < 2:
        x = -half_x + gap if wall == 0 else half_x - gap - size[0]
        return np.array([x, rng.uniform(-half_y, half_y - size[1]), 0.0])
    y = -half_y + gap if wall == 2 else half_y - gap - size[1]
    return np.array([rng.uniform(-half_x, half_x - size[0]), y, 0.0])


def _random_yaw(rng: np.random.Generator, config: SyntheticSceneConfig) -> float:
    """A yaw in [-furniture_yaw_deg, furniture_yaw_deg]; draws nothing when that is 0 (layouts stay the same)."""
    if config.furniture_yaw_deg <= 0.0:
        return 0.0
    return math.radians(rng.uniform(-config.furniture_yaw_deg, config.furniture_yaw_deg))


def _touching_pair(rng: np.random.Generator, size_a: np.ndarray, size_b: np.ndarray) -> tuple[_Box, _Box]:
    """Two boxes (lo, hi) in a local frame with B's face on A's face along a random horizontal axis."""
    axis = int(rng.integers(2))
    other = 1 - axis
    lo_a, hi_a = np.zeros(3), size_a.copy()
    lo_b = np.zeros(3)
    lo_b[other] = rng.uniform(-(size_b[other] - 0.1), size_a[other] - 0.1)
    lo_b[axis] = hi_a[axis]  # B's face is A's face: exact contact
    hi_b = lo_b + size_b
    if rng.random() < 0.5:  # B on the other side of A
        lo_a[axis], hi_a[axis] = size_b[axis], size_b[axis] + size_a[axis]
        lo_b[axis], hi_b[axis] = 0.0, size_b[axis]
        hi_b[axis] = lo_a[axis]
    return (lo_a, hi_a), (lo_b, hi_b)


def _stack_on(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, size_top: np.ndarray) -> _Box:
    """Box (lo, hi) of size ``size_top`` resting exactly on the box (lo, hi), inside its top face."""
    top_lo = np.array(
        [
            lo[0] + rng.uniform(0, hi[0] - lo[0] - size_top[0]),
            lo[1] + rng.uniform(0, hi[1] - lo[1] - size_top[1]),
            hi[2],
        ]
    )
    top_hi = top_lo + size_top
    top_hi[2] = hi[2] + size_top[2]
    return top_lo, top_hi


def _layout(config: SyntheticSceneConfig, rng: np.random.Generator) -> list[_Spec]:
    half_x, half_y = config.room_size_x_m / 2, config.room_size_y_m / 2
    floor = _FloorPlan(-half_x, -half_y, half_x, half_y, 'floor')
    specs: list[_Spec] = []
    clutter = config.clutter

    table_lo, table_hi, parts = _table(rng)
    floor.rects.append(_rect_of(table_lo, table_hi))
    specs.append(_Spec('table', ('furniture',), parts))
    table_index = 0

    # Chairs: one on each long side; then (after the wall furniture, where they fit) one at an end of the
    # table and a second one on a long side.
    table_center = (table_lo + table_hi) / 2

    def add_chair(side: int, end_turn: float, required: bool) -> None:
        def sample_chair() -> tuple[_Rect, tuple[list[_Part], float]]:
            if end_turn:  # a chair at a long side of the table turned by 90 degrees about its centre
                half = (table_hi - table_lo) / 2
                turned_lo = table_center - np.array([half[1], half[0], 0.0])
                turned_hi = table_center + np.array([half[1], half[0], half[2]]) + np.array([0.0, 0.0, half[2]])
                lo, hi, chair_parts = _chair(rng, turned_lo, turned_hi, side)
                chair_parts = _turned(chair_parts, end_turn, table_center[:2])
                lo = hi = np.concatenate([v for v, _ in chair_parts]).mean(0)
            else:
                lo, hi, chair_parts = _chair(rng, table_lo, table_hi, side)
            yaw = _random_yaw(rng, config)
            chair_parts = _turned(chair_parts, yaw, (lo + hi)[:2] / 2)
            return _footprint_rect(chair_parts), (chair_parts, end_turn + yaw)

        placed = floor.place(sample_chair, 'chair', clearance=0.05, required=required)
        if placed is not None:
            specs.append(_Spec('chair', ('furniture',), placed[0], yaw=placed[1]))

    chairs = ((-1, 0.0), (1, 0.0), (1, math.pi / 2), (-1, 0.0))[: config.num_chairs]
    for side, end_turn in chairs[:2]:
        add_chair(side, end_turn, required=True)

    # Wall furniture: a random wall side each, in this order (the seed's layouts depend on it).
    for make_parts, what in ((_storage, 'cabinet or shelf'), (_seating, 'sofa or bed')):
        side = rng.choice([-1, 1])

        def sample_wall_piece(
            make_parts: Callable[[np.random.Generator, float, float, int], tuple[str, list[_Part]]] = make_parts,
            side: int = side,
        ) -> tuple[_Rect, tuple[str, list[_Part]]]:
            label, piece_parts = make_parts(rng, half_x, half_y, side)
            return _footprint_rect(piece_parts), (label, piece_parts)

        piece = floor.place(sample_wall_piece, what, clearance=0.2)
        assert piece is not None  # a required placement raises instead
        label, parts = piece
        specs.append(_Spec(label, ('furniture',), parts))
    storage_index = len(specs) - 2
    for side, end_turn in chairs[2:]:
        add_chair(side, end_turn, required=False)

    # Clutter on the table top.
    top_z = float(table_hi[2])
    tabletop = _FloorPlan(table_lo[0], table_lo[1], table_hi[0], table_hi[1], 'table top')
    for _ in range(2):
        item = _tabletop_item(tabletop, rng, (0.075, 0.075, 0.075, 0.075), 'mug')
        assert item is not None  # a required placement raises instead
        x, y = item
        specs.append(_Spec('mug', ('small',), _mug(rng, x, y, top_z), on_top_of=table_index))
    item = _tabletop_item(tabletop, rng, (0.04, 0.04, 0.04, 0.04), 'bottle')
    assert item is not None
    x, y = item
    specs.append(_Spec('bottle', ('small',), _bottle(rng, x, y, top_z), on_top_of=table_index))
    if clutter != 'none':
        flat_items = [
            ('magazine', (0.27, 0.3), (0.2, 0.22), (0.006, 0.012)),
            ('book', (0.21, 0.24), (0.14, 0.17), (0.018, 0.025)),
        ]
        if clutter == 'heavy':
            flat_items.append(flat_items[0])
        for k, (label, long_side, short_side, thickness) in enumerate(flat_items):
            size = [rng.uniform(*long_side), rng.uniform(*short_side)]
            if rng.random() < 0.5:
                size.reverse()
            placed = _tabletop_item(tabletop, rng, (0.0, 0.0, size[0], size[1]), label, required=k < 2)
            if placed is None:
                continue
            x, y = placed
            box = _box([x, y, top_z], [x + size[0], y + size[1], top_z + rng.uniform(*thickness)])
            specs.append(_Spec(label, ('small', 'flat'), [box], on_top_of=table_index))
    if clutter == 'heavy':
        _heavy_tabletop(rng, tabletop, top_z, table_index, specs)

    # Clutter on the floor, along the walls (where the camera sees it both from across the room
    # and from the inner lap). Each group is built around a local origin, then moved (and turned)
    # as a whole, so that contacts stay exact.
    def place_near_wall(
        local_lo: np.ndarray, local_hi: np.ndarray, what: str, boxes: Sequence[_Box] = (), required: bool = True
    ) -> tuple[np.ndarray, float] | None:
        """Offset of a group of boxes (local frame) near a wall, and the yaw it was turned by."""
        size = local_hi[:2] - local_lo[:2]

        def sample() -> tuple[_Rect, tuple[np.ndarray, float]]:
            offset = _near_wall_offset(rng, half_x, half_y, size) - np.append(local_lo[:2], 0.0)
            yaw = _random_yaw(rng, config) if boxes else 0.0
            parts = _turned(
                [_box(lo + offset, hi + offset) for lo, hi in boxes] or [_box(local_lo + offset, local_hi + offset)],
                yaw,
                (local_lo[:2] + local_hi[:2]) / 2 + offset[:2],
            )
            return _footprint_rect(parts), (offset, yaw)

        return floor.place(sample, what, clearance=0.15, edge_clearance=0.05, required=required)

    def add_boxes(
        group: Sequence[_Box],
        labels: Sequence[str],
        tags: tuple[str, ...],
        what: str,
        relation: str | None,
        stacked_sizes: Sequence[np.ndarray] = (),
        required: bool = True,
    ) -> int | None:
        """A group of boxes near a wall; ``relation`` 'touching' (pairs) or 'stacked' (each on the one before:
        ``group`` is the bottom box, boxes of ``stacked_sizes`` are put on it once it is placed)."""
        lo = np.minimum.reduce([b[0] for b in group])
        hi = np.maximum.reduce([b[1] for b in group])
        placed = place_near_wall(lo, hi, what, group, required)
        if placed is None:
            return None
        offset, yaw = placed
        pivot = (lo[:2] + hi[:2]) / 2 + offset[:2]
        group = list(group)
        for size in stacked_sizes:
            group.append(_stack_on(rng, *group[-1], size))
        first = len(specs)
        for k, ((box_lo, box_hi), label) in enumerate(zip(group, labels)):
            spec = _Spec(label, tags, _turned([_box(box_lo + offset, box_hi + offset)], yaw, pivot), yaw=yaw)
            if relation == 'touching':
                spec.touching = [first + (1 - k)]
            elif k > 0:
                spec.on_top_of = first + k - 1
            specs.append(spec)
        return first

    radius = rng.uniform(0.1, 0.13)
    ball = place_near_wall(np.zeros(3), np.full(3, 2 * radius), 'ball')
    assert ball is not None  # a required placement raises instead
    offset, _ = ball
    specs.append(_Spec('ball', ('small',), [_sphere(offset + radius, radius)]))

    size_a = np.array([rng.uniform(0.3, 0.4), rng.uniform(0.25, 0.35), rng.uniform(0.25, 0.4)])
    size_b = np.array([rng.uniform(0.25, 0.35), rng.uniform(0.25, 0.35), rng.uniform(0.2, 0.35)])
    if clutter == 'none':
        for box_size, label in ((size_a, 'storage box'), (size_b, 'cardboard box')):
            add_boxes([(np.zeros(3), box_size)], [label], (), label, None)
    else:
        add_boxes(
            _touching_pair(rng, size_a, size_b),
            ['storage box', 'cardboard box'],
            ('touching',),
            'touching boxes',
            'touching',
        )

    size_bottom = np.array([rng.uniform(0.4, 0.5), rng.uniform(0.35, 0.45), rng.uniform(0.25, 0.35)])
    size_top = np.array([rng.uniform(0.25, 0.35), rng.uniform(0.2, 0.3), rng.uniform(0.15, 0.25)])
    if clutter == 'none':
        add_boxes([(np.zeros(3), size_bottom)], ['crate'], (), 'crate', None)
    else:
        add_boxes(
            [(np.zeros(3), size_bottom)], ['crate', 'toolbox'], ('stacked',), 'stacked boxes', 'stacked', [size_top]
        )
    if clutter == 'heavy':
        _heavy_floor_and_furniture(rng, specs, storage_index, add_boxes)
    return specs


def _heavy_tabletop(
    rng: np.random.Generator, tabletop: _FloorPlan, top_z: float, table_index: int, specs: list[_Spec]
) -> None:
    """Heavy clutter on the table: a can touching a bowl, a stack of two books."""
    radius_bowl, radius_can = rng.uniform(0.07, 0.09), rng.uniform(0.032, 0.036)
    span = 2 * radius_bowl + 2 * radius_can
    placed = _tabletop_item(
        tabletop, rng, (radius_bowl, radius_bowl, span - radius_bowl, radius_bowl), 'bowl and can', required=False
    )
    if placed is not None:
        _touching_bowl_and_can(rng, placed, radius_bowl, radius_can, top_z, table_index, specs)
    size = np.array([rng.uniform(0.21, 0.24), rng.uniform(0.15, 0.17), rng.uniform(0.025, 0.035)])
    placed = _tabletop_item(tabletop, rng, (0.0, 0.0, size[0], size[1]), 'book stack', required=False)
    if placed is None:
        return
    lo = np.array([placed[0], placed[1], top_z])
    hi = lo + size
    top_size = np.array([rng.uniform(0.15, 0.19), rng.uniform(0.11, 0.14), rng.uniform(0.02, 0.03)])
    top_lo, top_hi = _stack_on(rng, lo, hi, top_size)
    bottom = len(specs)
    specs.append(_Spec('book', ('small', 'stacked'), [_box(lo, hi)], on_top_of=table_index))
    specs.append(_Spec('book', ('small', 'stacked'), [_box(top_lo, top_hi)], on_top_of=bottom))


def _touching_bowl_and_can(
    rng: np.random.Generator,
    anchor: tuple[float, float],
    radius_bowl: float,
    radius_can: float,
    top_z: float,
    table_index: int,
    specs: list[_Spec],
) -> None:
    x, y = anchor
    first = len(specs)
    specs.append(
        _Spec(
            'bowl',
            ('small', 'touching'),
            [_cylinder(x, y, top_z, top_z + rng.uniform(0.06, 0.08), radius_bowl)],
            touching=[first + 1],
            on_top_of=table_index,
        )
    )
    can_x = x + radius_bowl + radius_can  # the cylinders touch along x
    specs.append(
        _Spec(
            'can',
            ('small', 'touching'),
            [_cylinder(can_x, y, top_z, top_z + rng.uniform(0.11, 0.13), radius_can)],
            touching=[first],
            on_top_of=table_index,
            look_alike=first if rng.random() < 0.5 else None,
        )
    )


def _heavy_floor_and_furniture(
    rng: np.random.Generator, specs: list[_Spec], storage_index: int, add_boxes: Callable[..., int | None]
) -> None:
    """Heavy clutter: objects on the cabinet, a second touching pair, a stack of three."""
    storage = specs[storage_index]
    if storage.label == 'cabinet':
        body = storage.parts[0][0]
        lo, hi = body.min(0), body.max(0)
        top = _FloorPlan(lo[0], lo[1], hi[0], hi[1], 'cabinet top')
        size = np.array([rng.uniform(0.15, 0.25), rng.uniform(0.12, 0.2), rng.uniform(0.1, 0.2)])
        placed = _tabletop_item(top, rng, (0.0, 0.0, size[0], size[1]), 'box on the cabinet', required=False)
        if placed is not None:
            x, y = placed
            specs.append(
                _Spec(
                    'box',
                    ('small',),
                    [_box([x, y, hi[2]], [x + size[0], y + size[1], hi[2] + size[2]])],
                    on_top_of=storage_index,
                )
            )
        radius = rng.uniform(0.05, 0.07)
        placed = _tabletop_item(top, rng, (radius, radius, radius, radius), 'vase', required=False)
        if placed is not None:
            specs.append(
                _Spec(
                    'vase',
                    ('small',),
                    [_cylinder(*placed, hi[2], hi[2] + rng.uniform(0.2, 0.3), radius)],
                    on_top_of=storage_index,
                )
            )
    size_a = np.array([rng.uniform(0.35, 0.5), rng.uniform(0.25, 0.35), rng.uniform(0.3, 0.5)])
    size_b = np.array([rng.uniform(0.2, 0.3), rng.uniform(0.2, 0.3), rng.uniform(0.15, 0.3)])
    first = add_boxes(
        _touching_pair(rng, size_a, size_b),
        ['suitcase', 'box'],
        ('touching',),
        'second touching pair',
        'touching',
        required=False,
    )
    if first is not None and rng.random() < 0.5:
        specs[first + 1].look_alike = first
    sizes = [
        np.array([rng.uniform(0.45, 0.55), rng.uniform(0.4, 0.5), rng.uniform(0.2, 0.3)]),
        np.array([rng.uniform(0.3, 0.4), rng.uniform(0.28, 0.35), rng.uniform(0.15, 0.25)]),
        np.array([rng.uniform(0.15, 0.22), rng.uniform(0.12, 0.2), rng.uniform(0.1, 0.15)]),
    ]
    first = add_boxes(
        [(np.zeros(3), sizes[0])],
        ['crate', 'box', 'box'],
        ('stacked',),
        'stack of three',
        'stacked',
        sizes[1:],
        required=False,
    )
    if first is not None and rng.random() < 0.5:
        specs[first + 1].look_alike = first
