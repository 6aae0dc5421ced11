"""Colour features of surface voxels: CIE Lab for colour steps between neighbours, shading-invariant features for
comparing the mean colours of regions."""

from __future__ import annotations

import cv2
import numpy as np

LAB_WEIGHTS = np.array([0.5, 1.0, 1.0], np.float32)
"""Lightness counts half in colour distances: shading changes it across the faces of one object."""


def shading_invariant_colors(colors_u8: np.ndarray) -> np.ndarray:
    """Nx3 float features of RGB colours whose distances ignore shading: chromaticity (r, g over r+g+b,
    unchanged when light scales all channels) scaled by 300, plus 10 * log brightness. Shading by a factor of 2
    moves them by about 7; a black object and a white one stay more than 13 apart. The small offsets damp the
    chromaticity noise of dark colours."""
    rgb = np.asarray(colors_u8, np.float64).reshape(-1, 3)
    total = rgb.sum(axis=1) + 30.0
    features = np.empty((len(rgb), 3))
    features[:, :2] = 300.0 * (rgb[:, :2] + 10.0) / total[:, None]
    features[:, 2] = 10.0 * np.log(total)
    return features


def lab_colors(colors_u8: np.ndarray) -> np.ndarray:
    """CIE Lab (L 0-100) of Nx3 uint8 RGB colours, float32."""
    rgb = np.asarray(colors_u8, np.float32).reshape(-1, 1, 3) / 255.0
    if len(rgb) == 0:
        return np.zeros((0, 3), np.float32)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).reshape(-1, 3)
