"""map_directory: save/load stay inside one user-only folder; temporaries of killed saves are cleaned up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from gpt4scene_ros.mapping.map_directory import (
    MapPathError,
    default_map_directory,
    open_map_directory,
    remove_stale_temporaries,
    resolve_map_path,
)


@pytest.fixture
def maps(tmp_path):
    return open_map_directory(tmp_path / 'maps')


def test_the_folder_is_created_user_only_and_defaults_under_the_data_home(tmp_path, monkeypatch):
    folder = open_map_directory(tmp_path / 'a' / 'b')
    assert folder.is_dir() and (folder.stat().st_mode & 0o777) == 0o700
    monkeypatch.setenv('XDG_DATA_HOME', str(tmp_path / 'data'))
    assert default_map_directory() == tmp_path / 'data' / 'gpt4scene_ros' / 'maps'
    assert open_map_directory('') == (tmp_path / 'data' / 'gpt4scene_ros' / 'maps').resolve()
    with pytest.raises(MapPathError, match='absolute'):
        open_map_directory('relative/maps')
    (tmp_path / 'file').write_text('x')
    with pytest.raises(MapPathError, match='not a folder'):
        open_map_directory(tmp_path / 'file')


def test_names_and_relative_paths_inside_are_accepted(maps):
    assert resolve_map_path(maps, 'kitchen.map', for_writing=True) == maps / 'kitchen.map'
    nested = resolve_map_path(maps, 'floor2/lab.map', for_writing=True)
    assert nested == maps / 'floor2' / 'lab.map' and nested.parent.is_dir()
    assert (nested.parent.stat().st_mode & 0o777) == 0o700
    (maps / 'kitchen.map').write_bytes(b'x')
    assert resolve_map_path(maps, './kitchen.map', for_writing=False) == maps / 'kitchen.map'


@pytest.mark.parametrize(
    'requested, words',
    [
        ('/etc/passwd', 'absolute'),
        ('/tmp/x.map', 'absolute'),
        ('~/x.map', 'absolute'),
        ('../x.map', '..'),
        ('a/../../x.map', '..'),
        ('', 'empty'),
        ('   ', 'empty'),
        ('a\x00b', 'NUL'),
        ('sub/', 'folder'),
        ('.', 'folder'),
    ],
)
def test_paths_leading_out_are_refused(maps, requested, words):
    for for_writing in (True, False):
        with pytest.raises(MapPathError, match=words):
            resolve_map_path(maps, requested, for_writing=for_writing)


def test_symlinks_leading_out_and_non_regular_files_are_refused(maps, tmp_path):
    outside = tmp_path / 'outside.map'
    outside.write_bytes(b'secret')
    (maps / 'link.map').symlink_to(outside)
    (tmp_path / 'elsewhere').mkdir()
    (maps / 'linked_folder').symlink_to(tmp_path / 'elsewhere')
    for requested in ('link.map', 'linked_folder/x.map'):
        for for_writing in (True, False):
            with pytest.raises(MapPathError, match='leads out'):
                resolve_map_path(maps, requested, for_writing=for_writing)
    (maps / 'inside.map').write_bytes(b'x')
    (maps / 'alias.map').symlink_to(maps / 'inside.map')
    assert resolve_map_path(maps, 'alias.map', for_writing=False) == maps / 'inside.map'
    (maps / 'folder.map').mkdir()
    os.mkfifo(maps / 'fifo.map')
    for requested in ('folder.map', 'fifo.map'):
        with pytest.raises(MapPathError, match='not a regular file'):
            resolve_map_path(maps, requested, for_writing=True)
    with pytest.raises(MapPathError, match='no such map file'):
        resolve_map_path(maps, 'missing.map', for_writing=False)
    assert outside.read_bytes() == b'secret'


def test_only_temporaries_of_dead_writers_are_removed(maps):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    stale = maps / f'.kitchen.map.{dead.pid}.ab12_x.tmp'
    mine = maps / f'.kitchen.map.{os.getpid()}.cd34.tmp'
    unrelated = maps / '.notes.tmp'
    for path in (stale, mine, unrelated):
        path.write_bytes(b'partial')
    assert remove_stale_temporaries(maps) == [stale]
    assert not stale.exists() and mine.exists() and unrelated.exists()
    stale.write_bytes(b'partial')
    open_map_directory(maps)  # at start-up too
    assert not stale.exists()


SAVER = textwrap.dedent("""
    import sys
    import numpy as np
    from gpt4scene_ros.common.settings.mapping import MappingConfig
    from gpt4scene_ros.mapping.map_file import save_map
    from gpt4scene_ros.mapping.map_file import load_map
    from gpt4scene_ros.mapping.tsdf import SceneMap
    from gpt4scene_ros.common.frames import CameraIntrinsics
    scene_map = SceneMap(MappingConfig(voxel_size_m=0.02, device='CPU:0'))
    intrinsics = CameraIntrinsics(width=160, height=120, fx=120.0, fy=120.0, cx=80.0, cy=60.0)
    depth = np.full((120, 160), 1.5, np.float32)
    color = np.full((120, 160, 3), 128, np.uint8)
    for i in range(int(sys.argv[2])):
        T = np.eye(4)
        T[0, 3] = 0.05 * i
        scene_map.integrate(color, depth, intrinsics, T)
    print('ready', flush=True)
    count = 0
    while True:
        save_map(scene_map, sys.argv[1], metadata={'save': count})
        count += 1
""")


def test_a_save_killed_midway_leaves_the_previous_file_intact(maps):
    """kill -9 during repeated saves: the file is always a whole map (the old or the new one), and the
    temporary the killed writer left is removed by the next start."""
    from gpt4scene_ros.common.settings.mapping import MappingConfig
    from gpt4scene_ros.mapping.map_file import load_map
    from gpt4scene_ros.mapping.tsdf import SceneMap

    target = maps / 'robot.map'
    saver = subprocess.Popen([sys.executable, '-P', '-c', SAVER, str(target), '40'], stdout=subprocess.PIPE, text=True)
    try:
        assert saver.stdout.readline().strip() == 'ready'
        deadline = time.monotonic() + 60
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3 + 0.1 * np.random.default_rng().random())
        saver.send_signal(signal.SIGKILL)
        saver.wait(timeout=30)
    finally:
        if saver.poll() is None:
            saver.kill()
    fresh = SceneMap(MappingConfig(voxel_size_m=0.02, device='CPU:0'))
    metadata = load_map(fresh, target)
    assert fresh.num_blocks > 0 and metadata['save'] >= 0
    left = [p for p in maps.iterdir() if p.name.endswith('.tmp')]
    # Make sure the clean-up is exercised even when the kill fell between two saves.
    (maps / f'.robot.map.{saver.pid}.zz99.tmp').write_bytes(b'partial')
    open_map_directory(maps)
    assert not [p for p in maps.iterdir() if p.name.endswith('.tmp')], f'left behind: {left}'
