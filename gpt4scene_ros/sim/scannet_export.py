"""A generated room rewritten as a ScanNet scene, with ScanNet's ground-truth files, for the benchmark readers.

:func:`write_scannet_scene` takes a folder written by
:func:`gpt4scene_ros.sim.writer.write_sequence` and writes, into a scene folder::

    color/N.jpg, depth/N.png, pose/N.txt     the frames (colour upscaled to ScanNet's 1296x968)
    intrinsic/intrinsic_{color,depth}.txt    4x4 (colour intrinsics scaled with the image)
    intrinsic/extrinsic_{color,depth}.txt    4x4 identity (the images share the viewpoint)
    <scene>.txt                              meta file with ``axisAlignment``
    <scene>_vh_clean_2.ply                   the observed surface (points, no faces)
    <scene>_vh_clean_2.0.010000.segs.json    a segment id per vertex
    <scene>.aggregation.json                 one segGroup per observed object

The surface is every ``frame_step``-th frame's depth back-projected with its
instance image, each object's points averaged per ``object_voxel_m`` voxel and the
room structure's per ``structure_voxel_m`` voxel (near views weigh more: depth noise
grows with distance), so an object's vertices are what the camera saw of it, as in a
real scan. Segments: one per object (segment id = instance id), and the
structure cut into ``BACKGROUND_SEGMENT_M`` cells. ``objectId`` (and ``id``) of a
segGroup is the object's id in ``instances.json`` (1-based, where real ScanNet's
are 0-based). Poses and vertices are written in a scan frame that ``axis_alignment``
(default :data:`DEFAULT_AXIS_ALIGNMENT`, not the identity, as in real scenes) takes
back to the generator's world frame, so a reader that applies it gets the
generator's frame and boxes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from gpt4scene_ros.common.frames import CameraIntrinsics, check_rigid_transform
from gpt4scene_ros.io.folders import SevenScenesSequence
from gpt4scene_ros.sim.scene import GENERATOR_NAME, GROUND_TRUTH_FILE, STRUCTURE_INSTANCE_ID

logger = logging.getLogger(__name__)

EXPORTER_NAME = 'gpt4scene_ros.sim.scannet_export'
"""Value of ``generator`` in the meta file; marks a folder :func:`write_scannet_scene` may overwrite."""
SCANNET_COLOR_SIZE = (1296, 968)
BACKGROUND_SEGMENT_M = 1.0
MIN_POINTS_PER_VOXEL = 2
"""A voxel seen by fewer back-projected pixels gives no vertex (lone depth-noise outliers would widen boxes)."""
MIN_RELATIVE_WEIGHT = 0.25
"""A voxel whose observations weigh less than this fraction of its instance's median voxel gives no vertex."""


def _axis_alignment(yaw_deg: float, translation: tuple[float, float, float]) -> np.ndarray:
    T = np.eye(4)
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    T[:2, :2] = [[c, -s], [s, c]]
    T[:3, 3] = translation
    return T


DEFAULT_AXIS_ALIGNMENT = _axis_alignment(30.0, (-2.5, 1.5, -0.05))
"""Scan frame -> generator world frame: a turn about z and a shift, as ScanNet's alignments are."""


def write_scannet_scene(
    sequence_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    scene_id: str = 'scene0000_00',
    *,
    axis_alignment: npt.ArrayLike = DEFAULT_AXIS_ALIGNMENT,
    frame_step: int = 5,
    object_voxel_m: float = 0.01,
    structure_voxel_m: float = 0.04,
) -> Path:
    """Write the generated room in ``sequence_dir`` as ScanNet scene ``scene_id`` into ``out_dir``; return it.

    ``out_dir`` is created if needed; an existing non-empty one is only reused when this function wrote it (its
    meta file says so). ValueError for a folder that is no generated room or bad arguments.
    """
    source = Path(sequence_dir)
    out = Path(out_dir)
    alignment = check_rigid_transform(axis_alignment, name='axis_alignment')
    if not isinstance(scene_id, str) or not scene_id or Path(scene_id).name != scene_id:
        raise ValueError(f'scene_id must be a file name such as scene0000_00, got {scene_id!r}')
    if isinstance(frame_step, bool) or not isinstance(frame_step, int) or frame_step < 1:
        raise ValueError(f'frame_step must be an integer >= 1, got {frame_step!r}')
    for name, value in (('object_voxel_m', object_voxel_m), ('structure_voxel_m', structure_voxel_m)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f'{name} must be a finite number > 0, got {value!r}')
    labels = _generated_labels(source)
    sequence = SevenScenesSequence(source)
    _prepare(out, scene_id)
    started = time.perf_counter()

    scan_from_world = np.linalg.inv(alignment)
    depth_k = sequence.intrinsics
    color_k = _scaled(depth_k, *SCANNET_COLOR_SIZE)
    # The meta file first: it marks the folder as this exporter's, to be rewritten after a failed run.
    meta = {
        'axisAlignment': ' '.join(f'{v:.9f}' for v in alignment.ravel()),
        'colorHeight': color_k.height,
        'colorWidth': color_k.width,
        'depthHeight': depth_k.height,
        'depthWidth': depth_k.width,
        'fx_color': color_k.fx,
        'fy_color': color_k.fy,
        'mx_color': color_k.cx,
        'my_color': color_k.cy,
        'fx_depth': depth_k.fx,
        'fy_depth': depth_k.fy,
        'mx_depth': depth_k.cx,
        'my_depth': depth_k.cy,
        'numColorFrames': len(sequence),
        'numDepthFrames': len(sequence),
        'sceneType': 'synthetic',
        'generator': EXPORTER_NAME,
    }
    (out / f'{scene_id}.txt').write_text(''.join(f'{key} = {value}\n' for key, value in meta.items()))
    points, depths, colors, instances = [], [], [], []
    for position in range(len(sequence)):
        frame = sequence.load(position)
        number = frame.index
        bgr = cv2.cvtColor(frame.color, cv2.COLOR_RGB2BGR)
        big = cv2.resize(bgr, SCANNET_COLOR_SIZE, interpolation=cv2.INTER_LINEAR)
        if not cv2.imwrite(str(out / 'color' / f'{number}.jpg'), big, [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise OSError(f'could not write {out / "color" / f"{number}.jpg"}')
        shutil.copyfile(source / f'frame-{number:06d}.depth.png', out / 'depth' / f'{number}.png')
        np.savetxt(out / 'pose' / f'{number}.txt', scan_from_world @ frame.T_world_camera, fmt='%.6f')
        if position % frame_step == 0:
            instance = cv2.imread(str(source / f'frame-{number:06d}.instance.png'), cv2.IMREAD_UNCHANGED)
            if instance is None or instance.shape != frame.depth.shape:
                raise ValueError(f'{source}: frame {number} has no readable instance image of the depth size')
            valid = frame.depth > 0
            points.append(_back_project(frame.depth_m, depth_k, frame.T_world_camera, valid))
            depths.append(frame.depth_m[valid])
            colors.append(frame.color[valid])
            instances.append(instance[valid].astype(np.int64))

    world, rgb, instance_of = _surface(
        np.concatenate(points),
        np.concatenate(depths),
        np.concatenate(colors),
        np.concatenate(instances),
        object_voxel_m,
        structure_voxel_m,
    )
    segments = _segments(world, instance_of)
    _write_ply(out / f'{scene_id}_vh_clean_2.ply', world @ scan_from_world[:3, :3].T + scan_from_world[:3, 3], rgb)
    _write_json(
        out / f'{scene_id}_vh_clean_2.0.010000.segs.json',
        {'params': {'source': EXPORTER_NAME}, 'sceneId': scene_id, 'segIndices': segments.tolist()},
    )
    observed = sorted(set(np.unique(instance_of).tolist()) - {STRUCTURE_INSTANCE_ID})
    groups = [{'id': i, 'objectId': i, 'segments': [i], 'label': labels[i]} for i in observed if i in labels]
    _write_json(
        out / f'{scene_id}.aggregation.json',
        {
            'sceneId': f'scannet.{scene_id}',
            'appId': EXPORTER_NAME,
            'segGroups': groups,
            'segmentsFile': f'scannet.{scene_id}_vh_clean_2.0.010000.segs.json',
        },
    )
    for name, matrix in (
        ('intrinsic_color.txt', _matrix4(color_k)),
        ('intrinsic_depth.txt', _matrix4(depth_k)),
        ('extrinsic_color.txt', np.eye(4)),
        ('extrinsic_depth.txt', np.eye(4)),
    ):
        np.savetxt(out / 'intrinsic' / name, matrix, fmt='%.6f')
    logger.info(
        'wrote %s (%d frames, %d vertices, %d objects) to %s in %.1f s',
        scene_id,
        len(sequence),
        len(world),
        len(groups),
        out,
        time.perf_counter() - started,
    )
    return out


def _generated_labels(source: Path) -> dict[int, str]:
    """Object id -> label of a folder ``write_sequence`` wrote; ValueError for any other folder."""
    try:
        record = json.loads((source / GROUND_TRUTH_FILE).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f'{source}: not a generated room (no readable {GROUND_TRUTH_FILE}: {error})') from None
    if not isinstance(record, dict) or record.get('generator') != GENERATOR_NAME:
        raise ValueError(f'{source / GROUND_TRUTH_FILE}: not written by {GENERATOR_NAME}')
    return {int(item['id']): str(item['label']) for item in record.get('objects', [])}


def _prepare(out: Path, scene_id: str) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f'out_dir {str(out)!r} exists and is not a folder')
    if out.is_dir() and any(out.iterdir()):
        meta = out / f'{scene_id}.txt'
        if not meta.is_file() or f'generator = {EXPORTER_NAME}' not in meta.read_text(errors='replace'):
            raise ValueError(
                f'out_dir {str(out)!r} is a non-empty folder not written by {EXPORTER_NAME} for {scene_id} '
                f'(no {meta.name} saying so); choose an empty or new folder'
            )
        for name in ('color', 'depth', 'pose', 'intrinsic'):
            shutil.rmtree(out / name, ignore_errors=True)
    for name in ('color', 'depth', 'pose', 'intrinsic'):
        (out / name).mkdir(parents=True, exist_ok=True)


def _scaled(k: CameraIntrinsics, width: int, height: int) -> CameraIntrinsics:
    """The intrinsics of the same view resized to ``width`` x ``height`` (pixel centres at integers)."""
    sx, sy = width / k.width, height / k.height
    return CameraIntrinsics(width, height, k.fx * sx, k.fy * sy, (k.cx + 0.5) * sx - 0.5, (k.cy + 0.5) * sy - 0.5)


def _matrix4(k: CameraIntrinsics) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = k.matrix()
    return matrix


def _back_project(
    depth_m: np.ndarray, k: CameraIntrinsics, T_world_camera: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    v, u = np.nonzero(valid)
    z = depth_m[valid].astype(np.float64)
    camera = np.stack([(u - k.cx) / k.fx * z, (v - k.cy) / k.fy * z, z], axis=1)
    return camera @ T_world_camera[:3, :3].T + T_world_camera[:3, 3]


def _surface(
    points: np.ndarray,
    depths: np.ndarray,
    colors: np.ndarray,
    instances: np.ndarray,
    object_voxel_m: float,
    structure_voxel_m: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices, colours, instance ids): one vertex per (instance, voxel), objects on the fine grid and the
    structure on the coarse one.

    Depth noise grows about with depth squared, so a point weighs ``1 / depth^4`` (its inverse variance) in its
    voxel's mean, and a voxel whose weight is below :data:`MIN_RELATIVE_WEIGHT` of its instance's median voxel
    weight, seen only from afar, gives no vertex: such voxels are the noise around the surface that would widen
    the boxes.
    """
    voxel = np.where(instances == STRUCTURE_INSTANCE_ID, structure_voxel_m, object_voxel_m)[:, None]
    cells = np.floor(points / voxel).astype(np.int64)
    cells -= cells.min(axis=0)
    span = cells.max(axis=0) + 1
    key = ((instances * span[0] + cells[:, 0]) * span[1] + cells[:, 1]) * span[2] + cells[:, 2]
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    weight = 1.0 / np.maximum(depths, 0.5) ** 4
    total = np.bincount(inverse, weights=weight)
    means = np.stack([np.bincount(inverse, weights=points[:, a] * weight) / total for a in range(3)], axis=1)
    rgb = np.stack([np.bincount(inverse, weights=colors[:, a]) / counts for a in range(3)], axis=1)
    instance_of = np.zeros(len(counts), np.int64)
    instance_of[inverse] = instances
    order = np.argsort(instance_of, kind='stable')
    starts = np.flatnonzero(np.r_[True, np.diff(instance_of[order]) != 0])
    medians = np.empty(len(counts))
    for begin, end in zip(starts, np.r_[starts[1:], len(order)]):
        members = order[begin:end]
        medians[members] = np.median(total[members])
    kept = (counts >= MIN_POINTS_PER_VOXEL) & (total >= MIN_RELATIVE_WEIGHT * medians)
    return means[kept], np.round(rgb[kept]).astype(np.uint8), instance_of[kept]


def _segments(vertices: np.ndarray, instance_of: np.ndarray) -> np.ndarray:
    """Segment id per vertex: the instance id for objects, ids above every instance id for structure cells."""
    segments = instance_of.copy()
    structure = instance_of == STRUCTURE_INSTANCE_ID
    if structure.any():
        cells = np.floor(vertices[structure] / BACKGROUND_SEGMENT_M).astype(np.int64)
        _, cell_number = np.unique(cells, axis=0, return_inverse=True)
        segments[structure] = int(instance_of.max()) + 1 + cell_number.ravel()
    return segments


def _write_ply(path: Path, vertices: np.ndarray, colors: np.ndarray) -> None:
    """Binary little-endian PLY of float x, y, z and uchar red, green, blue, alpha (ScanNet's vertex layout)."""
    table = np.empty(
        len(vertices),
        dtype=[
            ('x', '<f4'),
            ('y', '<f4'),
            ('z', '<f4'),
            ('red', 'u1'),
            ('green', 'u1'),
            ('blue', 'u1'),
            ('alpha', 'u1'),
        ],
    )
    table['x'], table['y'], table['z'] = vertices.astype(np.float32).T
    table['red'], table['green'], table['blue'] = colors.T
    table['alpha'] = 255
    header = (
        f'ply\nformat binary_little_endian 1.0\ncomment written by {EXPORTER_NAME}\nelement vertex {len(vertices)}\n'
        'property float x\nproperty float y\nproperty float z\n'
        'property uchar red\nproperty uchar green\nproperty uchar blue\nproperty uchar alpha\n'
        'element face 0\nproperty list uchar int vertex_indices\nend_header\n'
    )
    path.write_bytes(header.encode('ascii') + table.tobytes())


def _write_json(path: Path, record: dict) -> None:
    path.write_text(json.dumps(record))
