"""GPT4Scene-style object-ID markers: where to put them, and drawing them.

A marker is a filled disc with a contrasting outline and the object's number
inside, placed at the most interior pixel of the object's visible mask (the
maximum of the distance transform, as Set-of-Mark places its labels), so it
sits on the object rather than on its background. The same ID is drawn on the
bird's-eye view and on every keyframe.

:func:`draw_markers` is a pure function of (image, markers, style): the query
service redraws the markers at the model's own input size.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import find_objects

REFERENCE_SIDE_PX = 512
"""Marker sizes are given for an image whose longest side is this (GPT4Scene's input size)."""


@dataclass(frozen=True)
class Marker:
    """Object ``id`` at pixel (``u``, ``v``) (column, row; pixel centres at integers) of its image."""

    id: int
    u: float
    v: float
    visible_px: int = 0
    """Pixels of the object's visible mask the marker was placed in (0 when unknown)."""

    def to_json(self) -> dict:
        return {
            'id': int(self.id),
            'pixel': [round(float(self.u), 1), round(float(self.v), 1)],
            'visible_px': int(self.visible_px),
        }


@dataclass(frozen=True)
class MarkerStyle:
    """How markers look. Sizes are for an image whose longest side is :data:`REFERENCE_SIDE_PX`; images of other
    sizes get proportionally scaled markers, so they stay legible after resizing.

    Each marker's radius comes from its image and its object (:func:`marker_radii`): at most ``radius_px``; at
    most ``object_share`` of the radius of a disc as large as the object's visible mask, so a marker leaves most
    of its object in sight (GPT4Scene's markers are small numbers on the objects); all markers together cover at
    most ``max_cover`` of the image's content (a BEV of 50 objects must still show the room); never below
    ``min_radius_px``, the smallest disc whose number stays legible."""

    radius_px: float = 20.0
    outline_px: float = 2.5
    min_scale: float = 0.6
    """Neighbouring markers that still overlap after being pushed apart shrink down to this factor."""
    min_radius_px: float = 9.0
    object_share: float = 0.6
    max_cover: float = 0.12

    def __post_init__(self) -> None:
        for name in ('radius_px', 'outline_px', 'min_radius_px'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f'MarkerStyle.{name} must be a finite number > 0, got {value!r}')
        for name, low in (('min_scale', 0.1), ('object_share', 0.1), ('max_cover', 0.01)):
            value = getattr(self, name)
            if not low <= value <= 1.0:
                raise ValueError(f'MarkerStyle.{name} must be in [{low}, 1], got {value!r}')


def marker_radii(
    markers: Sequence[Marker], image_shape: tuple[int, ...], style: MarkerStyle, content_px: int | None = None
) -> np.ndarray:
    """The radius of each marker in an image of ``image_shape`` whose content (pixels that show something: a
    BEV's mapped area) is ``content_px`` (None: the whole image); see :class:`MarkerStyle`."""
    height, width = image_shape[:2]
    scale = max(height, width) / REFERENCE_SIDE_PX
    largest = style.radius_px * scale
    smallest = min(largest, style.min_radius_px * scale)
    if not markers:
        return np.zeros(0)
    area = float(content_px if content_px else height * width)
    crowd = math.sqrt(style.max_cover * area / (len(markers) * math.pi))
    cap = min(largest, max(smallest, crowd))
    visible = np.array([m.visible_px for m in markers], dtype=np.float64)
    own = np.where(visible > 0, style.object_share * np.sqrt(visible / math.pi), cap)
    return np.clip(own, smallest, cap)


def marker_color(object_id: int) -> tuple[int, int, int]:
    """A saturated RGB colour for an ID: golden-ratio hues, so neighbouring IDs differ clearly."""
    hue = (int(object_id) * 0.6180339887) % 1.0
    value = 0.95 if int(object_id) % 2 else 0.75
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, value)
    return int(round(255 * red)), int(round(255 * green)), int(round(255 * blue))


def place_marker(mask: np.ndarray) -> tuple[float, float, int] | None:
    """(u, v, area): the most interior pixel of a boolean mask (distance-transform maximum), or None if empty.

    Ties go to the pixel nearest the mask's centroid, so a symmetric mask gets its marker in the middle.
    """
    mask = np.asarray(mask, dtype=bool)
    area = int(mask.sum())
    if area == 0:
        return None
    padded = np.pad(mask, 1).astype(np.uint8)  # the image border counts as background
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    best = distance.max()
    rows, cols = np.nonzero(distance >= best - 1e-6)
    centre_row, centre_col = np.argwhere(mask).mean(axis=0)
    k = int(np.argmin((rows - centre_row) ** 2 + (cols - centre_col) ** 2))
    return float(cols[k]), float(rows[k]), area


def place_markers(label_image: np.ndarray, ids: Iterable[int] | None = None, min_area_px: int = 1) -> list[Marker]:
    """One marker per instance id in ``label_image`` (HxW ints, <= 0 = no instance), largest area first.

    ``ids`` restricts the markers to those instances; masks smaller than ``min_area_px`` get none.
    """
    labels = np.asarray(label_image)
    present, counts = np.unique(labels[labels > 0], return_counts=True)
    wanted = set(int(i) for i in present) if ids is None else set(int(i) for i in ids) & set(present.tolist())
    compact = np.zeros(labels.shape, np.int32)  # find_objects wants small consecutive labels
    lookup = np.zeros(int(present.max()) + 1 if len(present) else 1, np.int32)
    lookup[present] = np.arange(1, len(present) + 1)
    positive = labels > 0
    compact[positive] = lookup[labels[positive]]
    slices = find_objects(compact)
    markers = []
    order = sorted(range(len(present)), key=lambda k: -counts[k])
    for k in order:
        object_id, count = int(present[k]), int(counts[k])
        if object_id not in wanted or count < min_area_px:
            continue
        rows, cols = slices[k]
        placed = place_marker(compact[rows, cols] == k + 1)  # on the mask's bounding box only
        assert placed is not None  # the box holds the object's pixels (count >= 1)
        u, v, area = placed
        markers.append(Marker(int(object_id), u + cols.start, v + rows.start, area))
    return markers


def fit_image(image: np.ndarray, longest_px: int, multiple: int = 1) -> tuple[np.ndarray, float, float]:
    """``image`` shrunk (never enlarged) so that its longest side is at most ``longest_px`` and, with
    ``multiple`` > 1, each side a multiple of it (the VLM's patch grid, so its processor resizes nothing and the
    image returned to the user is the one the model saw); and the (u, v) scales."""
    height, width = image.shape[:2]
    scale = min(1.0, longest_px / max(height, width))
    target = [max(1, int(round(side * scale))) for side in (width, height)]
    if multiple > 1:
        limit = max(multiple, longest_px // multiple * multiple)
        target = [min(limit, max(multiple, int(round(side / multiple)) * multiple)) for side in target]
    if (target[0], target[1]) == (width, height):
        return image, 1.0, 1.0
    interpolation = cv2.INTER_AREA if target[0] * target[1] < width * height else cv2.INTER_LINEAR
    return cv2.resize(image, tuple(target), interpolation=interpolation), target[0] / width, target[1] / height


def scale_markers(markers: Iterable[Marker], scale_u: float, scale_v: float | None = None) -> list[Marker]:
    """Markers of an image resized by (``scale_u``, ``scale_v``): pixel centres stay pixel centres."""
    scale_v = scale_u if scale_v is None else scale_v
    area = scale_u * scale_v
    return [
        Marker(m.id, (m.u + 0.5) * scale_u - 0.5, (m.v + 0.5) * scale_v - 0.5, int(round(m.visible_px * area)))
        for m in markers
    ]


def layout_markers(
    markers: Sequence[Marker],
    image_shape: tuple[int, ...],
    style: MarkerStyle = MarkerStyle(),
    content_px: int | None = None,
) -> list[tuple[Marker, float]]:
    """Final (marker, radius) pairs for drawing (radii from :func:`marker_radii`): overlapping markers pushed
    apart, then shrunk if need be.

    Each marker moves at most two of its radii from its place, and stays inside the image. Every round moves all
    overlapping pairs at once (numpy over the pairs; 30 markers take about a millisecond).
    """
    height, width = image_shape[:2]
    if not markers:
        return []
    radii = marker_radii(markers, image_shape, style, content_px)
    anchors = np.array([[m.u, m.v] for m in markers], dtype=np.float64)
    centres = anchors.copy()
    first, second = np.triu_indices(len(centres), 1)
    gap = (radii[first] + radii[second]) * 1.05
    for _ in range(_LAYOUT_ROUNDS):
        delta = centres[second] - centres[first]
        distance = np.hypot(delta[:, 0], delta[:, 1])
        close = distance < gap - _LAYOUT_TOLERANCE_PX  # pushes converge on the gap: stop a hair short of it
        if not close.any():
            break
        i, j, delta, distance = first[close], second[close], delta[close], distance[close]
        apart = distance > 1e-6
        direction = np.where(apart[:, None], delta / np.where(apart, distance, 1.0)[:, None], (1.0, 0.0))
        push = direction * ((gap[close] - distance) / 2.0)[:, None]
        shift = np.zeros_like(centres)
        np.add.at(shift, i, -push)
        np.add.at(shift, j, push)
        # A marker pushed by several neighbours at once moves by their mean push, so a crowd does not overshoot.
        pushes = np.bincount(np.concatenate([i, j]), minlength=len(centres))
        centres += shift / np.maximum(pushes, 1)[:, None]
        offset = centres - anchors
        length = np.linalg.norm(offset, axis=1)
        centres = anchors + offset * np.minimum(1.0, 2.0 * radii / np.maximum(length, 1e-9))[:, None]
        centres[:, 0] = np.clip(centres[:, 0], radii, np.maximum(radii, width - 1 - radii))
        centres[:, 1] = np.clip(centres[:, 1], radii, np.maximum(radii, height - 1 - radii))
    distance = np.hypot(*(centres[second] - centres[first]).T)
    overlapping = distance < radii[first] + radii[second]
    share = distance[overlapping] / (radii[first] + radii[second])[overlapping]  # each keeps its part of the gap
    fitted = radii.copy()
    np.minimum.at(fitted, first[overlapping], np.maximum(style.min_scale, share) * radii[first[overlapping]])
    np.minimum.at(fitted, second[overlapping], np.maximum(style.min_scale, share) * radii[second[overlapping]])
    return [
        (Marker(m.id, float(c[0]), float(c[1]), m.visible_px), float(r)) for m, c, r in zip(markers, centres, fitted)
    ]


_LAYOUT_ROUNDS = 50
_LAYOUT_TOLERANCE_PX = 0.25


def draw_markers(image: np.ndarray, markers: Iterable[Marker], style: MarkerStyle = MarkerStyle()) -> np.ndarray:
    """A copy of ``image`` (HxWx3 uint8 RGB) with a numbered disc per marker (see the module docstring)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'draw_markers needs an HxWx3 uint8 RGB image, got {image.dtype} {image.shape}')
    canvas = np.ascontiguousarray(image).copy()
    content = int(np.count_nonzero(canvas.any(axis=2)))  # a BEV's unmapped background is black
    for marker, radius in layout_markers(list(markers), canvas.shape, style, content):
        outline = max(1, int(round(style.outline_px * radius / style.radius_px)))  # in proportion to the disc
        centre = (int(round(marker.u)), int(round(marker.v)))
        fill = marker_color(marker.id)
        light = 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2] > 150
        ink = (0, 0, 0) if light else (255, 255, 255)
        ring = (255, 255, 255) if not light else (0, 0, 0)
        r = max(2, int(round(radius)))
        cv2.circle(canvas, centre, r, fill, thickness=-1, lineType=cv2.LINE_AA)
        cv2.circle(canvas, centre, r, ring, thickness=outline, lineType=cv2.LINE_AA)
        text = str(int(marker.id))
        thickness = max(1, int(round(r / 9)))
        font_scale = 1.0
        (text_w, text_h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        font_scale *= min(1.3 * r / max(text_w, 1), 0.95 * r / max(text_h, 1))
        (text_w, text_h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        origin = (int(round(marker.u - text_w / 2)), int(round(marker.v + text_h / 2)))
        cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink, thickness, cv2.LINE_AA)
    return canvas
