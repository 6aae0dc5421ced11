"""A small hand-made scene snapshot (BEV, keyframes with markers, instances) for the query tests."""

from __future__ import annotations

import cv2
import numpy as np

from gpt4scene_ros.common.frames import CameraIntrinsics
from gpt4scene_ros.mapping.bev import BevImage
from gpt4scene_ros.objects.boxes import OrientedBox
from gpt4scene_ros.objects.keyframes import spread_ranked
from gpt4scene_ros.objects.markers import Marker
from gpt4scene_ros.objects.scene_objects import Keyframe, ObjectsSnapshot
from gpt4scene_ros.objects.tracking import Instance

INSTANCES = (
    Instance(3, OrientedBox((0.5, 0.2, 0.8), (0.1, 0.1, 0.1)), 80, 'mug', 0.7),
    Instance(7, OrientedBox((0.0, 0.0, 0.4), (1.2, 0.8, 0.8)), 900, 'table', 0.9),
    Instance(12, OrientedBox((-1.0, 1.0, 0.45), (0.5, 0.5, 0.9), 0.3), 400),
)


def make_snapshot(
    num_keyframes: int = 10, width: int = 640, height: int = 480, textured: bool = False, num_objects: int = 0
) -> ObjectsSnapshot:
    """Keyframe k is a flat grey of its own shade; `textured` adds camera-like detail (for JPEG sizes).

    ``num_objects`` > 0: a room's worth of objects instead of the three hand-made ones (:func:`crowded`)."""
    rng = np.random.default_rng(4)
    bev = BevImage(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8), (-2.0, -1.5), 0.01, 1.9)
    if num_objects:
        return crowded(num_objects, num_keyframes, width, height, rng)
    keyframes = []
    ranks = {position: rank for rank, position in enumerate(spread_ranked(num_keyframes, num_keyframes))}
    for k in range(num_keyframes):
        image = np.full((height, width, 3), (60 + 10 * k) % 256, np.uint8)
        if textured:
            detail = cv2.resize(rng.integers(0, 120, (height // 8, width // 8, 3), dtype=np.uint8), (width, height))
            image = cv2.add(image // 2, detail + rng.integers(0, 12, detail.shape, dtype=np.uint8))
        T = np.eye(4)
        T[:3, 3] = (0.1 * k, 0.0, 1.4)
        markers = (Marker(3, 100.0 + 10 * k, 200.0, 900), Marker(7, 400.0, 300.0, 9000))
        keyframes.append(
            Keyframe(
                100 + k,
                float(k),
                image,
                CameraIntrinsics(width, height, 500.0, 500.0, width / 2 - 0.5, height / 2 - 0.5),
                T,
                markers,
                ranks[k],
            )
        )
    return ObjectsSnapshot(
        10.0,
        5,
        INSTANCES,
        bev,
        (Marker(3, 250.0, 150.0, 50), Marker(7, 200.0, 140.0, 2000), Marker(12, 100.0, 50.0, 300)),
        tuple(keyframes),
    )


def crowded(num_objects: int, num_keyframes: int, width: int, height: int, rng) -> ObjectsSnapshot:
    """A snapshot with the marker load of a furnished room: ``num_objects`` instances spread over a 512x410
    textured BEV, each keyframe (textured) showing a dozen of them."""
    bev_image = cv2.resize(rng.integers(40, 220, (41, 51, 3), dtype=np.uint8), (512, 410))
    bev = BevImage(bev_image, (-2.5, -2.0), 0.01, 1.9)
    ids = list(range(1, num_objects + 1))
    instances = tuple(
        Instance(i, OrientedBox((rng.uniform(-2, 2), rng.uniform(-2, 2), 0.5), (0.4, 0.4, 0.8)), 300) for i in ids
    )
    bev_markers = tuple(Marker(i, rng.uniform(20, 490), rng.uniform(20, 390), 400) for i in ids)
    keyframes = []
    for k in range(num_keyframes):
        detail = cv2.resize(rng.integers(0, 200, (height // 8, width // 8, 3), dtype=np.uint8), (width, height))
        shown = rng.choice(ids, size=min(12, num_objects), replace=False)
        markers = tuple(Marker(int(i), rng.uniform(30, width - 30), rng.uniform(30, height - 30), 2000) for i in shown)
        T = np.eye(4)
        T[:3, 3] = (0.1 * k, 0.0, 1.4)
        intrinsics = CameraIntrinsics(width, height, 500.0, 500.0, width / 2 - 0.5, height / 2 - 0.5)
        keyframes.append(Keyframe(100 + k, float(k), detail, intrinsics, T, markers, k))
    return ObjectsSnapshot(10.0, 5, instances, bev, bev_markers, tuple(keyframes))
