"""Stale Fast DDS shared-memory segments are removed, live and fresh ones kept (gpt4scene_ros/ros/dds_shm.py)."""

from __future__ import annotations

import fcntl
import os
import time

from gpt4scene_ros.ros.dds_shm import remove_stale_segments


def segment(folder, name, size, age_s):
    (folder / name).write_bytes(b'x' * size)
    lock = folder / f'{name}_el'
    lock.write_bytes(b'')
    then = time.time() - age_s
    os.utime(lock, (then, then))
    return folder / name, lock


def test_only_participant_segments_no_process_holds_and_old_enough_are_removed(tmp_path):
    dead, dead_lock = segment(tmp_path, 'fastdds_0123456789abcdef', 8192, 120)
    live, live_lock = segment(tmp_path, 'fastdds_00000000000000aa', 4096, 120)
    fresh, fresh_lock = segment(tmp_path, 'fastdds_00000000000000bb', 4096, 1)
    port, port_lock = segment(tmp_path, 'fastdds_port7411', 4096, 120)
    other = tmp_path / 'not_fastdds_el'
    other.write_bytes(b'')
    holder = os.open(live_lock, os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_SH)  # a living participant's lock (a second open file, so it conflicts)
    try:
        removed, freed = remove_stale_segments(tmp_path)
    finally:
        os.close(holder)
    assert removed == 1 and freed >= 8192
    assert not dead.exists() and not dead_lock.exists()
    assert live.exists() and live_lock.exists(), 'held: in use'
    assert fresh.exists() and fresh_lock.exists(), 'too young: its owner may not hold the lock yet'
    assert other.exists()
    assert port.exists() and port_lock.exists(), 'port queues are shared: never removed'

    assert remove_stale_segments(tmp_path / 'missing') == (0, 0)
