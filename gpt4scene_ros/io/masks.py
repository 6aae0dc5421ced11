"""The ``precomputed`` mask source: a folder of instance label images beside the frames.

``frame-XXXXXX.mask.png`` (16- or 8-bit, 0 = no mask, the number is the frame's own) for the frame numbered
XXXXXX (the 7-Scenes file number, or the position in a TUM or bag sequence); optionally
``frame-XXXXXX.mask.json`` with ``{"names": {"3": "chair"}, "scores": {"3": 0.9}}`` naming masks. Frames
without a file are fused without masks.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import cv2

from gpt4scene_ros.common.masks import FrameMasks, MaskError, check_masks

MASK_SUFFIX = '.mask.png'
_MASK_FILE = re.compile(r'frame-(\d{6})\.mask\.png')


class MaskFolder:
    """Reads the masks of a frame by its number; :meth:`load` returns None where the folder has none."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f'masks folder {str(self.root)!r} does not exist')
        self._paths = {
            int(match.group(1)): path
            for path in self.root.iterdir()
            if (match := _MASK_FILE.fullmatch(path.name)) is not None
        }
        if not self._paths:
            raise ValueError(f'masks folder {str(self.root)!r} holds no frame-XXXXXX{MASK_SUFFIX} files')

    def __len__(self) -> int:
        return len(self._paths)

    def load(self, number: int, shape: tuple[int, int]) -> FrameMasks | None:
        """The masks of frame ``number`` for a colour image of ``shape`` (rows, cols); MaskError when its file is
        unreadable or of the wrong size or type."""
        path = self._paths.get(int(number))
        if path is None:
            return None
        labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if labels is None:
            raise MaskError(f'{path}: not a readable image')
        try:
            labels = check_masks(labels, shape)
        except MaskError as error:
            raise MaskError(f'{path}: {error}') from None
        names, scores = {}, {}
        sidecar = path.with_name(path.name[: -len(MASK_SUFFIX)] + '.mask.json')
        if sidecar.exists():
            try:
                meta = json.loads(sidecar.read_text())
                names = {int(k): str(v) for k, v in meta.get('names', {}).items()}
                scores = {int(k): float(v) for k, v in meta.get('scores', {}).items()}
            except (ValueError, AttributeError, TypeError) as error:
                raise MaskError(
                    f'{sidecar}: expected {{"names": {{"1": "chair"}}, "scores": {{"1": 0.9}}}}: {error}'
                ) from None
        return FrameMasks(labels, names, scores)
