"""ScanNet's ground-truth objects as boxes: one axis-aligned box per annotated object of a scene.

A ScanNet scene folder holds the reconstructed mesh ``<scene>_vh_clean_2.ply``, its
over-segmentation ``<scene>_vh_clean_2.0.010000.segs.json`` (``segIndices``: a
segment id per mesh vertex) and the annotation ``<scene>.aggregation.json``
(``segGroups``: ``objectId``, ``label`` and the ``segments`` of each object). An
object's box is the axis-aligned box of its vertices after the scene's
``axisAlignment`` (``<scene>.txt``), the frame that ScanNet-based benchmarks give
boxes in. ``objectId`` is 0-based and is the ``object_id`` of ScanRefer and
ScanQA. The box lives in ``eval/`` because :class:`OrientedBox` is an objects-stage
type; the scene's sequence reader is :mod:`gpt4scene_ros.io.scannet`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gpt4scene_ros.io.scannet import read_axis_alignment, scene_name
from gpt4scene_ros.objects.boxes import OrientedBox

_PLY_TYPES = {
    'char': 'i1',
    'int8': 'i1',
    'uchar': 'u1',
    'uint8': 'u1',
    'short': 'i2',
    'int16': 'i2',
    'ushort': 'u2',
    'uint16': 'u2',
    'int': 'i4',
    'int32': 'i4',
    'uint': 'u4',
    'uint32': 'u4',
    'float': 'f4',
    'float32': 'f4',
    'double': 'f8',
    'float64': 'f8',
}
_PLY_FORMATS = {'ascii': '', 'binary_little_endian': '<', 'binary_big_endian': '>'}


@dataclass(frozen=True)
class ScanNetObject:
    """One annotated object: ScanNet's ``objectId`` (0-based), its label, the axis-aligned box of its vertices
    in the aligned frame (yaw 0) and how many mesh vertices it has."""

    object_id: int
    label: str
    box: OrientedBox
    num_vertices: int


def read_scannet_objects(scene_dir: str | os.PathLike[str]) -> list[ScanNetObject]:
    """The annotated objects of the ScanNet scene in ``scene_dir``, by ``object_id``; objects without vertices are
    left out. ValueError naming the file and the field when a file is missing or malformed."""
    root = Path(scene_dir)
    scene = scene_name(root)
    vertices = read_ply_vertices(root / f'{scene}_vh_clean_2.ply')
    alignment = read_axis_alignment(root / f'{scene}.txt')
    if alignment is not None:
        vertices = vertices @ alignment[:3, :3].T + alignment[:3, 3]
    segments_file = root / f'{scene}_vh_clean_2.0.010000.segs.json'
    segment_of_vertex = _int_array(_json_field(segments_file, 'segIndices'), segments_file, 'segIndices')
    if len(segment_of_vertex) != len(vertices):
        raise ValueError(
            f'{segments_file}: segIndices has {len(segment_of_vertex)} entries but the mesh has {len(vertices)} '
            f'vertices (one segment id per vertex)'
        )
    aggregation_file = root / f'{scene}.aggregation.json'
    groups = _json_field(aggregation_file, 'segGroups')

    objects: dict[int, ScanNetObject] = {}
    for number, group in enumerate(groups):
        where = f'{aggregation_file}: segGroups[{number}]'
        if not isinstance(group, dict):
            raise ValueError(f'{where} must be an object, got {type(group).__name__}')
        object_id, label, segments = group.get('objectId'), group.get('label'), group.get('segments')
        if isinstance(object_id, bool) or not isinstance(object_id, int) or object_id < 0:
            raise ValueError(f'{where}.objectId must be an integer >= 0, got {object_id!r}')
        if not isinstance(label, str):
            raise ValueError(f'{where}.label must be a string, got {label!r}')
        if not isinstance(segments, list):
            raise ValueError(f'{where}.segments must be a list of segment ids, got {type(segments).__name__}')
        if object_id in objects:
            raise ValueError(f'{where}.objectId {object_id} is repeated')
        points = vertices[np.isin(segment_of_vertex, _int_array(segments, aggregation_file, f'segGroups[{number}]'))]
        if len(points):
            low, high = points.min(axis=0), points.max(axis=0)
            objects[object_id] = ScanNetObject(object_id, label, OrientedBox((low + high) / 2, high - low), len(points))
    return [objects[k] for k in sorted(objects)]


def read_ply_vertices(path: Path) -> np.ndarray:
    """The vertices (Nx3 float64 x, y, z) of a PLY file, ASCII or binary; ValueError naming the file and the
    problem. The vertex element may follow only elements of fixed-size properties."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f'{path}: mesh file is missing or unreadable: {error}') from None
    end = data.find(b'end_header')
    if not data.startswith(b'ply') or end < 0:
        raise ValueError(f'{path}: not a PLY file (no "ply" ... "end_header" header)')
    body = data.index(b'\n', end) + 1 if b'\n' in data[end:] else len(data)
    fmt, elements = _parse_ply_header(path, data[:end].decode('ascii', errors='replace'))
    names = [name for name, _, _ in elements]
    if 'vertex' not in names:
        raise ValueError(f'{path}: PLY header has no vertex element')
    before, (_, count, properties) = elements[: names.index('vertex')], elements[names.index('vertex')]
    property_names = [name for name, _ in properties]
    if not {'x', 'y', 'z'} <= set(property_names) or any(kind == 'list' for _, kind in properties):
        raise ValueError(f'{path}: PLY vertex element needs properties x, y, z and no lists, has {property_names}')
    if fmt == 'ascii':
        skip = sum(n for _, n, _ in before)
        lines = data[body:].decode('ascii', errors='replace').splitlines()[skip : skip + count]
        try:
            table = np.array([line.split()[: len(properties)] for line in lines], dtype=np.float64)
        except ValueError as error:
            raise ValueError(f'{path}: malformed ASCII vertex data: {error}') from None
        if table.shape != (count, len(properties)):
            raise ValueError(f'{path}: expected {count} vertex lines of {len(properties)} numbers, got fewer')
        return table[:, [property_names.index(axis) for axis in 'xyz']]
    order = _PLY_FORMATS[fmt]
    offset = body
    for name, n, element_properties in before:
        if any(kind == 'list' for _, kind in element_properties):
            raise ValueError(f'{path}: binary PLY with a list element ({name}) before the vertices is not supported')
        offset += n * np.dtype([(p, order + kind) for p, kind in element_properties]).itemsize
    dtype = np.dtype([(p, order + kind) for p, kind in properties])
    if len(data) < offset + count * dtype.itemsize:
        raise ValueError(f'{path}: file ends inside the vertex data ({count} vertices of {dtype.itemsize} bytes)')
    records = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return np.stack([records[axis].astype(np.float64) for axis in 'xyz'], axis=1)


def _parse_ply_header(path: Path, header: str) -> tuple[str, list[tuple[str, int, list[tuple[str, str]]]]]:
    """(format, [(element name, count, [(property name, numpy kind or 'list')])]) of a PLY header."""
    fmt = ''
    elements: list[tuple[str, int, list[tuple[str, str]]]] = []
    for number, line in enumerate(header.splitlines()[1:], start=2):
        words = line.split()
        if not words or words[0] in ('comment', 'obj_info'):
            continue
        if words[0] == 'format' and len(words) == 3 and words[1] in _PLY_FORMATS:
            fmt = words[1]
        elif words[0] == 'element' and len(words) == 3 and words[2].isdigit():
            elements.append((words[1], int(words[2]), []))
        elif words[0] == 'property' and elements and len(words) == 5 and words[1] == 'list':
            elements[-1][2].append((words[4], 'list'))
        elif words[0] == 'property' and elements and len(words) == 3 and words[1] in _PLY_TYPES:
            elements[-1][2].append((words[2], _PLY_TYPES[words[1]]))
        else:
            raise ValueError(f'{path}: malformed PLY header line {number}: {line!r}')
    if not fmt:
        raise ValueError(f'{path}: PLY header has no "format ascii|binary_little_endian|binary_big_endian 1.0" line')
    return fmt, elements


def _json_field(path: Path, field: str) -> list:
    """The list in ``field`` of the JSON object in ``path``."""
    try:
        record = json.loads(path.read_text(encoding='utf-8'))
    except OSError as error:
        raise ValueError(f'{path}: file is missing or unreadable: {error}') from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f'{path}: not valid JSON: {error}') from None
    value = record.get(field) if isinstance(record, dict) else None
    if not isinstance(value, list):
        raise ValueError(f'{path}: field {field} must be a list, got {type(value).__name__}')
    return value


def _int_array(values: list, path: Path, field: str) -> np.ndarray:
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f'{path}: {field} must hold integer segment ids only')
    return np.asarray(values, dtype=np.int64)
