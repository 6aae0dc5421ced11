"""The one driver of a live map: each frame is fused into the TSDF, then offered to the object layer.

The mapping node and ``gpt4scene-process`` both feed frames through a
:class:`Mapper`, so a frame reaches the objects exactly when it changed the
map, and ``version`` counts the changes the outputs are published for. Saving,
loading and clearing go through it too, so the map and the object layer's
state (instance IDs, votes) always change together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from gpt4scene_ros.common.frames import CameraIntrinsics
from gpt4scene_ros.common.masks import FrameMasks
from gpt4scene_ros.mapping.map_file import load_map, save_map
from gpt4scene_ros.mapping.tsdf import IntegrationResult, SceneMap
from gpt4scene_ros.objects.process import ObjectsWorkerError

logger = logging.getLogger(__name__)


class ObjectLayer(Protocol):
    """What a :class:`Mapper` drives: :class:`~gpt4scene_ros.objects.scene_objects.SceneObjects` (offline,
    ``gpt4scene-process``) or the node's :class:`~gpt4scene_ros.objects.process.ObjectsProcess`, which runs one
    in a child process."""

    def observe(
        self,
        color: np.ndarray,
        depth: np.ndarray,
        intrinsics: CameraIntrinsics,
        T_map_camera: np.ndarray,
        stamp_s: float,
        index: int,
        depth_scale: float = 1.0,
        masks: FrameMasks | None = None,
    ) -> bool: ...

    def add_masks(self, stamp_s: float, masks: FrameMasks) -> None: ...

    def state(self) -> tuple[dict, dict]: ...

    def restore(self, tracker_state: dict | None, arrays: dict | None) -> int: ...

    def reset(self) -> None: ...


class Mapper:
    """A :class:`~gpt4scene_ros.mapping.tsdf.SceneMap` and the object layer that watches it.

    ``objects``: anything with ``observe(color, depth, intrinsics, T_map_camera, stamp_s, index, depth_scale)``
    (:class:`~gpt4scene_ros.objects.scene_objects.SceneObjects`, or the node's
    :class:`~gpt4scene_ros.objects.process.ObjectsProcess`), or None for a map without objects.
    """

    def __init__(
        self,
        scene_map: SceneMap,
        objects: ObjectLayer | None = None,
        on_objects_failure: Callable[[ObjectsWorkerError], None] | None = None,
    ) -> None:
        """``on_objects_failure``: called when the object layer (a child process) fails during a load or a
        reset; the map itself is loaded or cleared all the same."""
        self.scene_map = scene_map
        self.objects = objects
        self.on_objects_failure = on_objects_failure
        self.version = 0
        """Bumped by every change of the map: an integrated frame, a reset, a load."""
        self.replaced_at = 0
        """The version the map was last replaced or cleared at (a load, a reset): read-outs before it are void."""

    def integrate(
        self,
        color: np.ndarray,
        depth: np.ndarray,
        intrinsics: CameraIntrinsics,
        T_map_camera: np.ndarray,
        stamp_s: float,
        index: int,
        depth_scale: float | None = None,
        masks: FrameMasks | None = None,
    ) -> IntegrationResult:
        """Fuse one frame (see :meth:`SceneMap.integrate`); when it was integrated, the objects observe it (with
        its instance masks, a :class:`~gpt4scene_ros.objects.segmentation.masks.FrameMasks`, where given)."""
        result = self.scene_map.integrate(color, depth, intrinsics, T_map_camera, depth_scale)
        if result.integrated:
            self.version += 1
            if self.objects is not None:
                self.objects.observe(
                    color,
                    depth,
                    intrinsics,
                    T_map_camera,
                    stamp_s,
                    index,
                    1.0 if depth_scale is None else depth_scale,
                    masks,
                )
        return result

    def changed(self) -> None:
        """The map was replaced or cleared outside :meth:`integrate` (load, reset)."""
        self.version += 1
        self.replaced_at = self.version

    def save(self, path: Path, metadata: dict | None = None) -> str:
        """Save the map and the object layer's state to a map file; a note for the caller (empty, or why the
        instances are not in it). Raises OSError or ValueError when nothing was saved."""
        metadata = dict(metadata or {})
        arrays: dict = {}
        note = ''
        if self.objects is not None:
            try:
                metadata['instances'], arrays = self.objects.state()
            except ObjectsWorkerError as error:  # the map is still worth saving
                note = f' (without instances: {error})'
        save_map(self.scene_map, path, metadata=metadata, arrays=arrays)
        return note

    def load(self, path: Path) -> tuple[dict, str]:
        """Replace the map and the object layer's state by a map file's: its metadata and a note on the
        instances. MapFileError or OSError leave everything as it was."""
        metadata, arrays = load_map(self.scene_map, path, arrays=True)
        metadata = metadata or {}
        self.changed()
        note = ''
        if self.objects is not None:
            try:
                restored = self.objects.restore(metadata.get('instances'), arrays)
                if 'instances' in metadata:
                    note = f', {restored} instances'
            except ValueError as error:
                logger.warning('instances in %s not restored: %s', path, error)
                note = ' (its instances could not be restored; they are rebuilt with new IDs)'
            except ObjectsWorkerError as error:
                self._objects_failed(error)
                note = ' (the object layer failed and was restarted; instances are rebuilt)'
        return metadata, note

    def reset(self) -> None:
        """Clear the map and forget the instances (their IDs are not reused)."""
        self.scene_map.reset()
        self.changed()
        if self.objects is not None:
            try:
                self.objects.reset()
            except ObjectsWorkerError as error:
                self._objects_failed(error)

    def _objects_failed(self, error: ObjectsWorkerError) -> None:
        if self.on_objects_failure is None:
            raise error
        self.on_objects_failure(error)
