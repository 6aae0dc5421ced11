"""Map files: a :class:`~gpt4scene_ros.mapping.tsdf.SceneMap`'s voxel blocks saved and loaded, with validation.

A map file is a NumPy ``.npz`` (zip) archive: a header (``format``,
``version``, voxel size, block resolution, truncation, frames integrated,
JSON ``metadata``), the block keys and the ``tsdf``/``weight``/``color``
voxels of each block, and any extra numeric arrays (``extra_<name>``) the
caller stores beside them (the object layer's state). Every entry is checked
before the map is replaced, so a bad file never corrupts the map in memory;
pickled objects are refused.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from gpt4scene_ros.common.settings.mapping import MappingConfig
from gpt4scene_ros.mapping.tsdf import ATTRIBUTE_CHANNELS, ATTRIBUTES, SceneMap

logger = logging.getLogger(__name__)

MAP_FILE_FORMAT = 'gpt4scene_ros.tsdf_map'
"""Value of the ``format`` entry that identifies a map file."""
MAP_FILE_VERSION = 1
"""Version of the map file layout written by :func:`save_map`; :func:`load_map` reads only this one."""


class MapFileError(ValueError):
    """A map file cannot be loaded (missing, unreadable, corrupt, or made with incompatible settings)."""


def save_map(
    scene_map: SceneMap, path: str | os.PathLike[str], metadata: dict | None = None, arrays: dict | None = None
) -> None:
    """Write ``scene_map`` to ``path`` atomically (a temporary file in the same folder, fsync, rename).

    ``metadata`` is any JSON-serialisable dict (e.g. ``T_map_world``), returned by :func:`load_map`;
    ``arrays`` (name -> numpy array, no objects) are stored beside it (e.g. what the object layer needs
    to rebuild the same instances) and returned by ``load_map(scene_map, path, arrays=True)``.
    A failed save leaves any previous file at ``path`` as it was and no temporary file behind;
    it raises OSError (e.g. an unwritable folder) or ValueError (metadata not JSON-serialisable).
    """
    path = Path(path)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict):
        raise ValueError(f'metadata must be a dict, got {type(metadata).__name__}')
    try:
        metadata_json = json.dumps(metadata)
    except (TypeError, ValueError) as error:
        raise ValueError(f'metadata is not JSON-serialisable: {error}') from None
    keys, attributes = scene_map.export_blocks()
    config = scene_map.config
    res = config.block_resolution
    entries = {
        'format': np.array(MAP_FILE_FORMAT),
        'version': np.array(MAP_FILE_VERSION, np.int64),
        'voxel_size_m': np.array(config.voxel_size_m, np.float64),
        'block_resolution': np.array(res, np.int64),
        'truncation_voxels': np.array(config.truncation_voxels, np.float64),
        'frames_integrated': np.array(scene_map.frames_integrated, np.int64),
        'metadata': np.array(metadata_json),
        'block_keys': keys.astype(np.int32),
    }
    for name, value in (arrays or {}).items():
        value = np.asarray(value)
        if value.dtype.kind not in 'biuf':
            raise ValueError(f'array {name!r} is {value.dtype}; only numeric arrays can be saved')
        entries[f'{_EXTRA_PREFIX}{name}'] = value
    entries.update(attributes)
    _write_atomically(path, entries)
    logger.info('saved %d blocks to %s', len(keys), path)


@overload
def load_map(scene_map: SceneMap, path: str | os.PathLike[str], arrays: Literal[False] = False) -> dict[str, Any]: ...
@overload
def load_map(
    scene_map: SceneMap, path: str | os.PathLike[str], arrays: Literal[True]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]: ...
def load_map(
    scene_map: SceneMap, path: str | os.PathLike[str], arrays: bool = False
) -> dict[str, Any] | tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Replace ``scene_map`` by the map saved at ``path`` and return its metadata (with ``arrays``: a tuple of
    the metadata and the extra arrays saved with it).

    Raises MapFileError (the current map stays as it was) when the file is
    missing, unreadable, corrupt, of another format version, or made with a
    different voxel size or block resolution, or holds more blocks than
    ``max_block_count``.
    """
    path = Path(path)
    config = scene_map.config
    res = config.block_resolution
    block_bytes = res**3 * sum(ATTRIBUTE_CHANNELS) * 4 + 12
    data, extra = _read_map_file(path, config.max_block_count * block_bytes + _EXTRA_BYTES_BUDGET)
    _check_compatible(config, path, data)
    frames_integrated = _scalar(path, data, 'frames_integrated', 'iu')
    if frames_integrated < 0:
        raise MapFileError(f'{path}: frames_integrated is {frames_integrated}, expected >= 0')
    keys = data['block_keys']
    count = len(keys)
    if count > config.max_block_count:
        raise MapFileError(f'{path}: holds {count} blocks, more than max_block_count={config.max_block_count}')
    for name, channels in zip(ATTRIBUTES, ATTRIBUTE_CHANNELS):
        expected = (count, res, res, res, channels)
        if data[name].shape != expected or data[name].dtype != np.float32:
            raise MapFileError(f'{path}: {name} is {data[name].dtype} {data[name].shape}, expected float32 {expected}')
        if not np.all(np.isfinite(data[name])):
            raise MapFileError(f'{path}: {name} has NaN or infinite values')
    if count and len(np.unique(keys, axis=0)) != count:
        raise MapFileError(f'{path}: block keys are not unique')
    try:
        metadata = json.loads(str(data['metadata']))
    except ValueError as error:
        raise MapFileError(f'{path}: metadata is not valid JSON ({error})') from None
    if not isinstance(metadata, dict):
        raise MapFileError(f'{path}: metadata is a {type(metadata).__name__}, expected a JSON object')

    try:
        scene_map.replace_blocks(keys, {name: data[name] for name in ATTRIBUTES}, frames_integrated)
    except ValueError as error:
        raise MapFileError(f'{path}: {error}') from None
    logger.info('loaded %d blocks from %s', count, path)
    return (metadata, extra) if arrays else metadata


def _check_compatible(config: MappingConfig, path: Path, data: dict) -> None:
    if _scalar(path, data, 'format', 'U') != MAP_FILE_FORMAT:
        raise MapFileError(f'{path}: not a gpt4scene_ros map file (format {str(data["format"])[:40]!r})')
    _scalar(path, data, 'metadata', 'U')
    version = _scalar(path, data, 'version', 'iu')
    if version != MAP_FILE_VERSION:
        raise MapFileError(f'{path}: map file version {version}; this build reads version {MAP_FILE_VERSION}')
    voxel = _scalar(path, data, 'voxel_size_m', 'f')
    if not math.isclose(voxel, config.voxel_size_m, rel_tol=1e-9, abs_tol=1e-12):
        raise MapFileError(f"{path}: voxel size {voxel} m differs from this map's voxel_size_m={config.voxel_size_m}")
    resolution = _scalar(path, data, 'block_resolution', 'iu')
    if resolution != config.block_resolution:
        raise MapFileError(
            f"{path}: block resolution {resolution} differs from this map's block_resolution={config.block_resolution}"
        )
    keys = data['block_keys']
    if keys.ndim != 2 or keys.shape[1] != 3 or keys.dtype != np.int32:
        raise MapFileError(f'{path}: block_keys is {keys.dtype} {keys.shape}, expected int32 Nx3')


_EXTRA_PREFIX = 'extra_'
_FILE_ENTRIES = (
    'format',
    'version',
    'voxel_size_m',
    'block_resolution',
    'truncation_voxels',
    'frames_integrated',
    'metadata',
    'block_keys',
) + ATTRIBUTES


def _scalar(path: Path, data: dict, name: str, kinds: str) -> Any:
    """A header entry as a Python scalar, refused unless it is a single value of the expected kind."""
    value = data[name]
    if value.ndim != 0 or value.dtype.kind not in kinds:
        raise MapFileError(
            f'{path}: {name} is {value.dtype} {value.shape}, expected one '
            f'{ {"iu": "integer", "f": "float", "U": "string"}[kinds] }'
        )
    scalar = value.item()
    if kinds == 'f' and not math.isfinite(scalar):
        raise MapFileError(f'{path}: {name} is {scalar}')
    return scalar


_EXTRA_BYTES_BUDGET = 512 * 1024 * 1024  # keys, metadata and the instance layer's arrays, beyond the blocks


def _check_archive(path: Path, budget_bytes: int) -> None:
    """Before any array is read: a zip whose members hold plain arrays that fit the budget.

    Each member's .npy header is read alone, so a file that declares a huge array (or a zip bomb) is refused
    instead of being allocated."""
    if not zipfile.is_zipfile(path):
        raise MapFileError(f'{path}: not a readable map file (not a zip archive: truncated or corrupt?)')
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            total += info.file_size
            if total > budget_bytes:
                raise MapFileError(
                    f'{path}: its arrays take more than {budget_bytes / 1e6:.0f} MB unpacked, more '
                    'than a map of max_block_count blocks'
                )
            if not info.filename.endswith('.npy'):
                continue
            with archive.open(info) as stream:
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
                else:
                    raise MapFileError(f'{path}: {info.filename} has .npy format {version}')
            if dtype.hasobject:
                raise MapFileError(
                    f'{path}: {info.filename} holds Python objects (refused: loading them could run code)'
                )
            if math.prod(shape) * dtype.itemsize > info.file_size:
                raise MapFileError(
                    f'{path}: {info.filename} declares {shape} {dtype} but holds '
                    f'{info.file_size} bytes (truncated or corrupt)'
                )


def _read_map_file(path: Path, budget_bytes: int) -> tuple[dict, dict]:
    if not path.exists():
        raise MapFileError(f'{path}: map file does not exist')
    if not path.is_file():
        raise MapFileError(f'{path}: is not a file')
    try:
        _check_archive(path, budget_bytes)
        with np.load(path, allow_pickle=False) as npz:
            missing = [name for name in _FILE_ENTRIES if name not in npz.files]
            if missing:
                raise MapFileError(f'{path}: not a gpt4scene_ros map file (missing {", ".join(missing)})')
            extra = {name[len(_EXTRA_PREFIX) :]: npz[name] for name in npz.files if name.startswith(_EXTRA_PREFIX)}
            return {name: npz[name] for name in _FILE_ENTRIES}, extra
    except MapFileError:
        raise
    except (
        OSError,
        ValueError,
        EOFError,
        zipfile.BadZipFile,
        KeyError,
        NotImplementedError,
        RuntimeError,
        TypeError,
    ) as error:  # zipfile raises NotImplementedError / RuntimeError for odd or encrypted members
        raise MapFileError(f'{path}: not a readable map file (truncated or corrupt?): {error}') from None


def _write_atomically(path: Path, arrays: dict) -> None:
    folder = path.parent if str(path.parent) else Path('.')
    descriptor, temporary = tempfile.mkstemp(prefix=f'.{path.name}.{os.getpid()}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(descriptor, 'wb') as stream:
            np.savez(stream, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        directory = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)
