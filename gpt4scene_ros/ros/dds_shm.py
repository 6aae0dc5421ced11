"""Fast DDS shared-memory segments that killed processes left behind.

Each Fast DDS participant maps a segment in ``/dev/shm`` (``fastdds_<id>``, 64 MB with this package's
``config/fastdds.xml``) and holds a lock on its companion ``fastdds_<id>_el`` while it lives. A process that
dies without cleaning up (``kill -9``, a crash, the OOM killer) leaves both behind, in memory: a robot whose
nodes a supervisor restarts after each crash fills its RAM with them (a test machine here held 1,682 of these
files, 22 GB, until test workers were killed for memory). :func:`remove_stale_segments` removes the ones no
living process holds; every node calls it as it starts.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: Fast DDS keeps no such files there
    fcntl = None  # type: ignore[assignment]

SHM_FOLDER = Path('/dev/shm')
PARTICIPANT_SEGMENT = re.compile(r'fastdds_[0-9a-f]{16}')
"""A participant's own segment (the 64 MB ones); its name is random, so no later participant reuses it."""
MIN_AGE_S = 30.0
"""Files younger than this are left alone: a participant starting beside us may not hold its lock yet."""


def remove_stale_segments(folder: Path = SHM_FOLDER, min_age_s: float = MIN_AGE_S) -> tuple[int, int]:
    """Remove every participant segment (``fastdds_<16 hex digits>``) whose ``_el`` lock no process holds and
    that is at least ``min_age_s`` old; (segments removed, bytes freed)."""
    if fcntl is None or not folder.is_dir():
        return 0, 0
    removed, freed = 0, 0
    now = time.time()
    for lock in folder.glob('fastdds_*_el'):
        segment = lock.with_name(lock.name[: -len('_el')])
        if not PARTICIPANT_SEGMENT.fullmatch(segment.name):
            continue  # port queues (fastdds_port*) are shared: a new participant may use one before it locks it
        try:
            if now - lock.stat().st_mtime < min_age_s:
                continue
            descriptor = os.open(lock, os.O_RDWR)
        except OSError:  # gone meanwhile, or not ours to open
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a living participant holds it
            os.close(descriptor)
            continue
        try:  # unlinked while locked, so no participant starting now can take it over half-removed
            if segment.exists():
                freed += segment.stat().st_blocks * 512
                segment.unlink()
                removed += 1
            lock.unlink()
        except OSError:
            pass
        finally:
            os.close(descriptor)
    return removed, freed
