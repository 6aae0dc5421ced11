"""Where map files may be written and read: one folder, ``map_directory``.

``~/save_map`` and ``~/load_map`` take a path from anyone on the DDS network, and the node often runs as root:
a path is accepted only when it names a regular file inside the folder (a plain file name, or a relative
path that stays inside it). Absolute paths, ``..``, symlinks leading out and non-regular files are refused
with a :class:`MapPathError` saying why. The folder is created user-only (0700).

Saves write a temporary file next to the target and rename it (:func:`gpt4scene_ros.mapping.tsdf.SceneMap.save`);
the temporary's name carries the writer's PID, so that one left behind by a writer that was killed is removed
at the next start or save (:func:`remove_stale_temporaries`), and never one that a live writer is filling.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

TEMPORARY_PATTERN = re.compile(r'^\..+\.(\d+)\.[^.]*\.tmp$')


class MapPathError(ValueError):
    """A map path that is refused; the message says why."""


def default_map_directory() -> Path:
    """``$XDG_DATA_HOME/gpt4scene_ros/maps``, by default ``~/.local/share/gpt4scene_ros/maps``."""
    data_home = os.environ.get('XDG_DATA_HOME') or os.path.join(os.path.expanduser('~'), '.local', 'share')
    return Path(data_home) / 'gpt4scene_ros' / 'maps'


def open_map_directory(directory: str | os.PathLike = '') -> Path:
    """Create the folder (user-only) if needed, clear stale temporaries, return its resolved path."""
    folder = Path(directory) if str(directory) else default_map_directory()
    folder = folder.expanduser()
    if not folder.is_absolute():
        raise MapPathError(f'map_directory {str(folder)!r} must be an absolute path')
    if folder.exists() and not folder.is_dir():
        raise MapPathError(f'map_directory {str(folder)!r} exists and is not a folder')
    if not folder.exists():
        try:
            folder.mkdir(mode=0o700, parents=True)
        except OSError as error:
            raise MapPathError(f'map_directory {str(folder)!r} cannot be created: {error.strerror}') from None
        os.chmod(folder, 0o700)  # mkdir's mode is reduced by the umask
    if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
        raise MapPathError(f'map_directory {str(folder)!r} is not readable and writable by this user')
    resolved = folder.resolve()
    remove_stale_temporaries(resolved)
    return resolved


def resolve_map_path(directory: Path, requested: str, for_writing: bool) -> Path:
    """The file inside ``directory`` that ``requested`` names, or :class:`MapPathError`."""
    if not requested or not requested.strip():
        raise MapPathError('file_path is empty: give a file name inside map_directory')
    if '\x00' in requested:
        raise MapPathError('file_path contains a NUL character')
    relative = Path(requested)
    if relative.is_absolute() or requested.startswith('~'):
        raise MapPathError(f'file_path {requested!r} is absolute: give a file name inside map_directory ({directory})')
    if '..' in relative.parts:
        raise MapPathError(f'file_path {requested!r} contains "..": paths must stay inside map_directory')
    if requested.endswith(('/', os.sep)) or relative.name in ('', '.'):
        raise MapPathError(f'file_path {requested!r} names a folder, not a file')
    root = directory.resolve()
    target = root / relative
    try:
        resolved = target.resolve()
    except (OSError, RuntimeError) as error:  # a symlink loop
        raise MapPathError(f'file_path {requested!r} cannot be resolved: {error}') from None
    if resolved != root and root not in resolved.parents:
        raise MapPathError(f'file_path {requested!r} leads out of map_directory (a symlink?)')
    if resolved.exists():
        mode = os.stat(resolved).st_mode
        if not stat.S_ISREG(mode):
            raise MapPathError(f'file_path {requested!r} is not a regular file')
    elif not for_writing:
        raise MapPathError(f'file_path {requested!r}: no such map file in map_directory')
    if for_writing:
        parent = resolved.parent
        if parent.exists() and not parent.is_dir():
            raise MapPathError(f'file_path {requested!r}: {parent.name!r} is not a folder')
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        remove_stale_temporaries(parent)
    return resolved


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete temporaries of saves whose writer process is gone (killed mid-save); returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = TEMPORARY_PATTERN.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _alive(pid):
            continue  # a save in progress (this process's or another's)
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
