"""The bird's-eye view (BEV): a north-up, top-down orthographic image of the map's surface points.

:func:`render_bev` is a pure function of points and colours, so the map, the
instance stage and the offline tools render the same view from the same data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from gpt4scene_ros.common.settings.mapping import MappingConfig

BEV_BACKGROUND_RGB = (255, 255, 255)
"""Colour of BEV pixels that no surface point falls into."""
BEV_EMPTY_EXTENT_M = 4.0
"""Side of the square a BEV covers when no surface point is left to show (empty map, or everything above
the ceiling cut): centred on the map origin, so its bottom-left corner is (-2 m, -2 m)."""


@dataclass(frozen=True, eq=False)
class BevImage:
    """A north-up, top-down orthographic image of the map (z up).

    ``image`` is HxWx3 uint8 RGB; row 0 is the largest map y, column 0 the
    smallest map x. ``origin_xy_m`` is the map (x, y) of the image's
    bottom-left corner (the outer corner of pixel (H-1, 0)), as in
    ``nav_msgs/MapMetaData.origin``; pixels are squares of ``metres_per_pixel``.

    Pixel coordinates are continuous (row, col): pixel (r, c) covers
    [r, r+1) x [c, c+1), so its centre is (r + 0.5, c + 0.5) and a map point
    falls into pixel ``floor(map_to_pixel(xy))``.
    """

    image: np.ndarray
    origin_xy_m: tuple
    metres_per_pixel: float
    max_height_m: float
    frame_id: str = 'map'
    top_point_index: np.ndarray | None = field(default=None, repr=False)
    """HxW int64: index (into the points the view was rendered from) of the point each pixel shows, -1 where
    none; lets a per-point label (an object instance) be read off the image. Not part of the metadata."""

    def __post_init__(self) -> None:
        image = self.image
        if (
            not isinstance(image, np.ndarray)
            or image.dtype != np.uint8
            or image.ndim != 3
            or image.shape[2] != 3
            or image.shape[0] < 1
            or image.shape[1] < 1
        ):
            raise ValueError(
                f'BevImage.image must be a non-empty HxWx3 uint8 array, got '
                f'{getattr(image, "dtype", type(image).__name__)} {getattr(image, "shape", "")}'
            )
        origin = tuple(float(v) for v in self.origin_xy_m)
        if len(origin) != 2 or not all(math.isfinite(v) for v in origin):
            raise ValueError(f'BevImage.origin_xy_m must be two finite numbers, got {self.origin_xy_m!r}')
        object.__setattr__(self, 'origin_xy_m', origin)
        if not (
            isinstance(self.metres_per_pixel, (int, float))
            and math.isfinite(self.metres_per_pixel)
            and self.metres_per_pixel > 0
        ):
            raise ValueError(f'BevImage.metres_per_pixel must be a finite number > 0, got {self.metres_per_pixel!r}')
        object.__setattr__(self, 'metres_per_pixel', float(self.metres_per_pixel))
        object.__setattr__(self, 'max_height_m', float(self.max_height_m))

    @property
    def height_px(self) -> int:
        return int(self.image.shape[0])

    @property
    def width_px(self) -> int:
        return int(self.image.shape[1])

    def map_to_pixel(self, xy: npt.ArrayLike) -> np.ndarray:
        """Continuous (row, col) of map points ``xy`` (Nx2 or 2 numbers) as an Nx2 float64 array."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        col = (xy[:, 0] - self.origin_xy_m[0]) / self.metres_per_pixel
        row = self.height_px - (xy[:, 1] - self.origin_xy_m[1]) / self.metres_per_pixel
        return np.stack([row, col], axis=1)

    def pixel_to_map(self, rows: npt.ArrayLike, cols: npt.ArrayLike) -> np.ndarray:
        """Map (x, y) of the centres of pixels (``rows``, ``cols``: integer indices) as an Nx2 float64 array."""
        rows, cols = np.broadcast_arrays(
            np.asarray(rows, dtype=np.float64).ravel(), np.asarray(cols, dtype=np.float64).ravel()
        )
        x = self.origin_xy_m[0] + (cols + 0.5) * self.metres_per_pixel
        y = self.origin_xy_m[1] + (self.height_px - rows - 0.5) * self.metres_per_pixel
        return np.stack([x, y], axis=1)

    def to_json(self) -> dict:
        """Metadata only (no pixels), JSON-serialisable."""
        return {
            'origin_xy_m': list(self.origin_xy_m),
            'metres_per_pixel': self.metres_per_pixel,
            'width_px': self.width_px,
            'height_px': self.height_px,
            'frame_id': self.frame_id,
            'max_height_m': self.max_height_m,
        }

    @classmethod
    def from_json(cls, d: dict, image: np.ndarray | None = None) -> BevImage:
        """Rebuild from :meth:`to_json` output; ``image`` (of the stored size) or a blank one of that size."""
        try:
            width, height = int(d['width_px']), int(d['height_px'])
            fields: dict[str, Any] = dict(
                origin_xy_m=tuple(d['origin_xy_m']),
                metres_per_pixel=float(d['metres_per_pixel']),
                max_height_m=float(d['max_height_m']),
                frame_id=str(d.get('frame_id', 'map')),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f'BEV metadata is malformed ({error!r}): {d!r}') from None
        if image is None:
            if width < 1 or height < 1:
                raise ValueError(f'BEV metadata has a non-positive size {width}x{height}')
            image = np.empty((height, width, 3), dtype=np.uint8)
            image[:] = BEV_BACKGROUND_RGB
        elif np.shape(image)[:2] != (height, width):
            raise ValueError(
                f'BEV image is {np.shape(image)[1]}x{np.shape(image)[0]} but the metadata says {width}x{height}'
            )
        return cls(image=image, **fields)


def render_bev(
    points: npt.ArrayLike,
    colors: npt.ArrayLike,
    *,
    size_px: int,
    max_height_m: float,
    margin_m: float,
    voxel_size_m: float,
) -> BevImage:
    """Top-down orthographic view of ``points`` (Nx3, map frame z up) below ``max_height_m``.

    The points above the ceiling cut are dropped; the rest, plus ``margin_m``
    on each side, are fitted into a longest side of ``size_px`` square pixels.
    Each point stands for a voxel-sized patch: it is splatted over the pixels
    whose centres lie within half a voxel of it, and each pixel shows the
    colour (``colors``, Nx3 uint8 RGB) of the highest point covering it (a
    numpy z-buffer); ``top_point_index`` says which point that is. Pixels with
    no point are :data:`BEV_BACKGROUND_RGB`. With nothing to show, the image is
    blank and covers :data:`BEV_EMPTY_EXTENT_M` around the map origin.
    """
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    if len(points) != len(colors):
        raise ValueError(f'render_bev: {len(points)} points but {len(colors)} colours')
    below = np.flatnonzero(points[:, 2] <= max_height_m)
    points, colors = points[below], colors[below]
    size = int(size_px)
    if len(points) == 0:
        half = BEV_EMPTY_EXTENT_M / 2.0
        image = np.empty((size, size, 3), np.uint8)
        image[:] = BEV_BACKGROUND_RGB
        return BevImage(
            image,
            (-half, -half),
            BEV_EMPTY_EXTENT_M / size,
            max_height_m,
            top_point_index=np.full((size, size), -1, np.int64),
        )

    lower = points[:, :2].min(axis=0).astype(np.float64) - margin_m
    upper = points[:, :2].max(axis=0).astype(np.float64) + margin_m
    extent = np.maximum(upper - lower, voxel_size_m)
    metres_per_pixel = float(extent.max()) / size
    width, height = (int(min(size, max(1, math.ceil(e / metres_per_pixel - 1e-9)))) for e in extent)
    image = np.empty((height, width, 3), np.uint8)
    index = np.full((height, width), -1, np.int64)
    bev = BevImage(image, (float(lower[0]), float(lower[1])), metres_per_pixel, max_height_m, top_point_index=index)

    # Each point stands for a voxel-sized patch: splat it over the footprint x footprint pixels whose
    # centres lie within half a voxel of it, and keep the highest point per pixel (a z-buffer). One pixel
    # wider than a voxel: surface points are not on a regular grid, and an exact fit left one-pixel gaps
    # (white grid lines) on the kitchen. Done as: each point's rank in height at the first pixel of its patch
    # (the highest rank where several share it), then a max filter over the patch (OpenCV's dilation, which
    # also leaves the GIL to the map thread), and each pixel takes the colour of the rank it ends up with.
    footprint = int(math.ceil(voxel_size_m / metres_per_pixel - 1e-9)) + 1
    first = np.floor(bev.map_to_pixel(points[:, :2]) - footprint / 2.0 + 0.5).astype(np.int64)
    by_height = np.argsort(points[:, 2], kind='stable')  # rank -> point
    pad = footprint  # patches that start outside the image still cover its border
    padded_width = width + 2 * pad
    linear = (first[by_height, 0] + pad) * padded_width + (first[by_height, 1] + pad)
    inside = (first[by_height] >= -pad).all(axis=1) & (first[by_height, 0] < height + pad)
    inside &= first[by_height, 1] < width + pad
    ranks = np.flatnonzero(inside)
    # np.unique keeps the first occurrence: reversed, that is the highest rank starting at each pixel.
    starts, last = np.unique(linear[ranks][::-1], return_index=True)
    rank_image = np.full((height + 2 * pad) * padded_width, -1.0, np.float32)  # ranks < 2^24 are exact
    rank_image[starts] = ranks[::-1][last]
    kernel = np.ones((footprint, footprint), np.uint8)
    covered = cv2.dilate(
        rank_image.reshape(height + 2 * pad, padded_width), kernel, anchor=(footprint - 1, footprint - 1)
    )[pad : pad + height, pad : pad + width]
    top_rank = covered.astype(np.int64)
    shown = top_rank >= 0
    index[shown] = below[by_height[top_rank[shown]]]
    image[:] = BEV_BACKGROUND_RGB
    image[shown] = colors[by_height[top_rank[shown]]]
    return bev


def map_bev(points: np.ndarray, colors: np.ndarray, config: MappingConfig) -> BevImage:
    """The BEV of a map's surface with the map's BEV settings: the one the node publishes and the objects mark."""
    return render_bev(
        points,
        colors,
        size_px=config.bev_size_px,
        max_height_m=config.bev_max_height_m,
        margin_m=config.bev_margin_m,
        voxel_size_m=config.voxel_size_m,
    )
