"""Writing a synthetic sequence to a folder in the 7-Scenes layout, with its ground truth.

Output folder (one per sequence)::

    camera-intrinsics.txt           3x3 K (np.savetxt)
    instances.json                  ground truth (objects, intrinsics, noise, T_map_world)
    frame-XXXXXX.color.jpg          8-bit colour (cv2.imread + BGR->RGB gives RGB)
    frame-XXXXXX.depth.png          uint16 millimetres, 0 = no measurement
    frame-XXXXXX.pose.txt           4x4 T_world_camera (optical convention: x right, y down, z forward)
    frame-XXXXXX.instance.png       uint16 instance id per pixel (0 = room structure or no hit)
"""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gpt4scene_ros.sim.build import build_scene
from gpt4scene_ros.sim.render import camera_path, render_frame
from gpt4scene_ros.sim.scene import (
    _STREAM_SENSOR,
    DEPTH_SCALE_PER_M,
    GENERATOR_NAME,
    GROUND_TRUTH_FILE,
    INTRINSICS_FILE,
    SyntheticScene,
    SyntheticSceneConfig,
    _rng,
)

logger = logging.getLogger(__name__)

_GENERATED_FILE = re.compile(
    r'(frame-\d{6}\.(color\.jpg|depth\.png|pose\.txt|instance\.png)|'
    + re.escape(INTRINSICS_FILE)
    + '|'
    + re.escape(GROUND_TRUTH_FILE)
    + ')'
)


def _prepare_output_dir(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ValueError(f'out_dir {str(out_dir)!r} exists and is not a folder')
        entries = list(out_dir.iterdir())
        if entries:
            marker = out_dir / GROUND_TRUTH_FILE
            try:
                generator = json.loads(marker.read_text()).get('generator')
            except (OSError, ValueError, AttributeError):
                generator = None
            if generator != GENERATOR_NAME:
                raise ValueError(
                    f'out_dir {str(out_dir)!r} is a non-empty folder not written by {GENERATOR_NAME} '
                    f'(no {GROUND_TRUTH_FILE} with generator={GENERATOR_NAME!r}); choose an empty or new folder'
                )
            for entry in entries:
                if entry.is_file() and _GENERATED_FILE.fullmatch(entry.name):
                    entry.unlink()
    else:
        out_dir.mkdir(parents=True)


def _json_scalar(value: object) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f'{type(value).__name__} is not JSON serialisable')


def _write_frame(
    out_dir: Path,
    index: int,
    color: np.ndarray,
    depth_m: np.ndarray,
    instance: np.ndarray,
    T_world_camera: np.ndarray,
    jpeg_quality: int,
) -> None:
    stem = out_dir / f'frame-{index:06d}'
    depth_mm = np.round(depth_m * DEPTH_SCALE_PER_M).astype(np.uint16)
    ok = cv2.imwrite(
        f'{stem}.color.jpg', cv2.cvtColor(color, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
    )
    ok &= cv2.imwrite(f'{stem}.depth.png', depth_mm, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    ok &= cv2.imwrite(f'{stem}.instance.png', instance, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OSError(f'could not write the images of frame {index} to {str(out_dir)!r}')
    np.savetxt(f'{stem}.pose.txt', T_world_camera)


def write_sequence(config: SyntheticSceneConfig, out_dir: str | os.PathLike) -> SyntheticScene:
    """Render the sequence for ``config`` into ``out_dir`` (7-Scenes layout plus ground truth).

    Creates ``out_dir`` if needed. An existing non-empty folder is only reused
    when it was written by this generator (its ``instances.json`` says so); its
    generated files are then replaced, other files are left alone. Raises
    ValueError otherwise. ``instances.json`` is written before the frames.
    """
    if not isinstance(config, SyntheticSceneConfig):
        raise TypeError(f'config must be a SyntheticSceneConfig, got {type(config).__name__}')
    out_dir = Path(out_dir)
    _prepare_output_dir(out_dir)
    start = time.perf_counter()
    scene = build_scene(config)
    np.savetxt(out_dir / INTRINSICS_FILE, config.intrinsics.matrix())
    (out_dir / GROUND_TRUTH_FILE).write_text(json.dumps(scene.ground_truth(), indent=2, default=_json_scalar) + '\n')
    rng = _rng(config.seed, _STREAM_SENSOR)
    pending: collections.deque[Future[None]] = collections.deque()
    # Encoding and file writes (OpenCV releases the GIL) overlap with the next ray cast.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for index, T_world_camera in enumerate(camera_path(config)):
            color, depth_m, instance = render_frame(scene, T_world_camera, config, rng)
            pending.append(
                pool.submit(_write_frame, out_dir, index, color, depth_m, instance, T_world_camera, config.jpeg_quality)
            )
            while len(pending) > 4:
                pending.popleft().result()
        while pending:
            pending.popleft().result()
    logger.info(
        'wrote %d synthetic frames (%dx%d, %d objects) to %s in %.1f s',
        config.num_frames,
        config.width,
        config.height,
        len(scene.objects),
        out_dir,
        time.perf_counter() - start,
    )
    return scene
