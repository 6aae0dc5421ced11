"""``open_sequence``: any recorded RGB-D input (a 7-Scenes or TUM folder, a rosbag2 bag) by its path."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from gpt4scene_ros.io.bags import BagSequence, BagTopics, is_bag
from gpt4scene_ros.io.folders import open_folder
from gpt4scene_ros.io.sequence import RgbdSequence, SequenceError

logger = logging.getLogger(__name__)


def open_sequence(
    path: str | os.PathLike[str], frame_rate_hz: float = 30.0, bag_topics: BagTopics | None = None
) -> RgbdSequence:
    """Open a recorded RGB-D folder (TUM RGB-D or 7-Scenes layout, detected) or a rosbag2 bag (MCAP or
    sqlite3: a ``.mcap``/``.db3`` file or a folder with ``metadata.yaml``).

    ``frame_rate_hz`` gives the timestamps of layouts that store none (7-Scenes);
    ``bag_topics`` the topics of a bag. Raises SequenceError when the path cannot be played.
    """
    if (
        isinstance(frame_rate_hz, bool)
        or not isinstance(frame_rate_hz, (int, float))
        or not math.isfinite(frame_rate_hz)
        or frame_rate_hz <= 0
    ):
        raise ValueError(f'frame_rate_hz must be a finite number > 0, got {frame_rate_hz!r}')
    root = Path(path).expanduser()
    if not root.exists():
        raise SequenceError(f'{root}: sequence folder or bag does not exist')
    sequence = BagSequence(root, bag_topics or BagTopics()) if is_bag(root) else open_folder(root, frame_rate_hz)
    logger.debug('opened %r', sequence)
    return sequence
