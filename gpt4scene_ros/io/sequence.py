"""What every recorded RGB-D sequence offers (folders and bags alike), and its errors.

Errors:
- :class:`SequenceError`: the sequence cannot be played at all (missing, not a
  folder or bag, no frames, malformed intrinsics, lists or topics).
- :class:`FrameError`: one frame cannot be loaded (missing or unreadable file
  or message, wrong size or dtype, bad pose); the other frames still can.
Both are ``ValueError`` subclasses whose messages name the file and the problem.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from gpt4scene_ros.common.frames import CameraIntrinsics, RgbdFrame


class SequenceError(ValueError):
    """The sequence cannot be played at all."""


class FrameError(ValueError):
    """One frame cannot be loaded; the others can."""


class RgbdSequence(ABC):
    """A recorded RGB-D sequence; :func:`gpt4scene_ros.io.open.open_sequence` opens one.

    ``load(i)`` takes the position ``0 <= i < len(self)`` and returns an
    :class:`~gpt4scene_ros.common.frames.RgbdFrame`: colour RGB uint8 HxWx3,
    the sensor's depth with its ``depth_scale`` (0 = invalid) and the
    camera-to-world pose (optical camera axes).
    """

    layout: str = ''
    root: Path
    intrinsics: CameraIntrinsics

    @abstractmethod
    def __len__(self) -> int:
        """Number of frames."""

    @abstractmethod
    def timestamp_s(self, i: int) -> float:
        """Sequence time of the frame at position ``i``, in seconds."""

    @abstractmethod
    def load(self, i: int) -> RgbdFrame:
        """Read the frame at position ``i``; raises FrameError naming what is at fault."""

    def close(self) -> None:
        """Release open files (a folder holds none)."""

    def __repr__(self) -> str:
        return f'{type(self).__name__}(root={str(self.root)!r}, frames={len(self)}, intrinsics={self.intrinsics})'


def checked_position(i: object, count: int, root: Path) -> int:
    """``i`` as a frame position of a sequence of ``count`` frames at ``root``; TypeError or IndexError."""
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
        raise TypeError(f'frame position must be an integer, got {i!r}')
    if not 0 <= i < count:
        raise IndexError(f'frame position {i} out of range 0..{count - 1} in {root}')
    return int(i)
