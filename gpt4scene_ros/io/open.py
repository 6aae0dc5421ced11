"""``open_sequence``: any recorded RGB-D input (a 7-Scenes, TUM, ScanNet or OpenEQA folder, a rosbag2 bag) by its
path."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from gpt4scene_ros.io.bags import BagSequence, BagTopics, is_bag
from gpt4scene_ros.io.folders import open_folder
from gpt4scene_ros.io.openeqa import OpenEqaEpisode, is_openeqa_folder
from gpt4scene_ros.io.scannet import ScanNetSequence, is_scannet_folder
from gpt4scene_ros.io.sequence import RgbdSequence, SequenceError

logger = logging.getLogger(__name__)


def open_sequence(
    path: str | os.PathLike[str], frame_rate_hz: float = 30.0, bag_topics: BagTopics | None = None
) -> RgbdSequence:
    """Open a recorded RGB-D folder or a rosbag2 bag (MCAP or sqlite3: a ``.mcap``/``.db3`` file or a folder
    with ``metadata.yaml``).

    Folder layouts, detected in this order: a ScanNet export (two or more of ``color/``, ``depth/``, ``pose/``,
    ``intrinsic/``; :mod:`gpt4scene_ros.io.scannet`), an OpenEQA episode (``NNNNNN-rgb.png``;
    :mod:`gpt4scene_ros.io.openeqa`), TUM RGB-D (``rgb.txt`` and ``depth.txt``), 7-Scenes
    (``frame-XXXXXX.depth.png``).

    ``frame_rate_hz`` gives the timestamps of layouts that store none (7-Scenes, ScanNet, OpenEQA);
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
    sequence: RgbdSequence
    if is_bag(root):
        sequence = BagSequence(root, bag_topics or BagTopics())
    elif is_scannet_folder(root):
        sequence = ScanNetSequence(root, float(frame_rate_hz))
    elif is_openeqa_folder(root):
        sequence = OpenEqaEpisode(root, frame_rate_hz=float(frame_rate_hz))
    else:
        sequence = open_folder(root, frame_rate_hz)
    logger.debug('opened %r', sequence)
    return sequence
