"""The one driver of a live map: each frame is fused into the TSDF, then offered to the object layer.

The mapping node and ``gpt4scene-process`` both feed frames through a
:class:`Mapper`, so a frame reaches the objects exactly when it changed the
map, and ``version`` counts the changes the outputs are published for.
"""

from __future__ import annotations

import numpy as np

from gpt4scene_ros.common.frames import CameraIntrinsics
from gpt4scene_ros.mapping.tsdf import IntegrationResult, SceneMap


class Mapper:
    """A :class:`~gpt4scene_ros.mapping.tsdf.SceneMap` and the object layer that watches it.

    ``objects``: anything with ``observe(color, depth, intrinsics, T_map_camera, stamp_s, index, depth_scale)``
    (:class:`~gpt4scene_ros.objects.scene_objects.SceneObjects`, or the node's
    :class:`~gpt4scene_ros.objects.process.ObjectsProcess`), or None for a map without objects.
    """

    def __init__(self, scene_map: SceneMap, objects=None):
        self.scene_map = scene_map
        self.objects = objects
        self.version = 0
        """Bumped by every change of the map: an integrated frame, a reset, a load."""

    def integrate(self, color: np.ndarray, depth: np.ndarray, intrinsics: CameraIntrinsics, T_map_camera: np.ndarray,
                  stamp_s: float, index: int, depth_scale: float | None = None) -> IntegrationResult:
        """Fuse one frame (see :meth:`SceneMap.integrate`); when it was integrated, the objects observe it."""
        result = self.scene_map.integrate(color, depth, intrinsics, T_map_camera, depth_scale)
        if result.integrated:
            self.version += 1
            if self.objects is not None:
                self.objects.observe(color, depth, intrinsics, T_map_camera, stamp_s, index,
                                     1.0 if depth_scale is None else depth_scale)
        return result

    def changed(self) -> None:
        """The map was replaced or cleared outside :meth:`integrate` (load, reset)."""
        self.version += 1
