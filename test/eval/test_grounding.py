"""Tests of gpt4scene_ros.eval.grounding: the IoU used, ScanRefer accuracy, Multi3DRefer F1 and the IoU-gated
Scan2Cap caption scores, on boxes whose IoU is known in closed form."""

import math
import shutil

import numpy as np
import pytest

from gpt4scene_ros.eval.answers import caption_scores
from gpt4scene_ros.eval.grounding import (
    MULTI3DREFER_TYPES,
    prediction_iou,
    score_multi3drefer,
    score_scan2cap,
    score_scanrefer,
)
from gpt4scene_ros.objects.boxes import OrientedBox

SIDE = 1.0
ROOM_POINT = (5.3, 7.1, 1.2)
"""Boxes sit at map coordinates of a ScanNet room, where 32-bit intersections lose digits."""


def cube(shift_x: float = 0.0, side: float = SIDE) -> OrientedBox:
    """A cube at ROOM_POINT moved along x: two equal cubes ``d`` apart have IoU (side - d) / (side + d)."""
    return OrientedBox((ROOM_POINT[0] + shift_x, ROOM_POINT[1], ROOM_POINT[2]), (side, side, side))


def shifted_iou(d: float, side: float = SIDE) -> float:
    return max(0.0, (side - abs(d)) / (side + abs(d)))


def shift_for_iou(iou: float, side: float = SIDE) -> float:
    """The shift at which two equal cubes have this IoU: d = side (1 - iou) / (1 + iou)."""
    return side * (1.0 - iou) / (1.0 + iou)


def axis_aligned_iou(a: OrientedBox, b: OrientedBox) -> float:
    """The protocol's IoU of axis-aligned boxes (min/max corners), in 64-bit floats."""
    lo_a, hi_a = np.subtract(a.center, np.divide(a.size, 2)), np.add(a.center, np.divide(a.size, 2))
    lo_b, hi_b = np.subtract(b.center, np.divide(b.size, 2)), np.add(b.center, np.divide(b.size, 2))
    overlap = np.prod(np.clip(np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b), 0.0, None))
    union = a.volume + b.volume - overlap
    return float(overlap / union) if union > 0 else 0.0


@pytest.mark.parametrize('d', [0.0, 0.1, 0.3, 0.5, 0.9, 1.0, 1.5])
def test_iou_of_shifted_equal_cubes(d):
    assert prediction_iou(cube(d), cube()) == pytest.approx(shifted_iou(d), abs=1e-6)


def test_iou_keeps_its_digits_at_room_coordinates():
    box = OrientedBox(ROOM_POINT, (0.7, 0.4, 0.9))
    assert prediction_iou(box, box) == pytest.approx(1.0, abs=1e-6)  # box_iou alone: 0.9999975


def test_iou_handles_yaw_missing_and_degenerate_boxes():
    long_x = OrientedBox(ROOM_POINT, (2.0, 1.0, 1.0))
    assert prediction_iou(OrientedBox(ROOM_POINT, (1.0, 2.0, 1.0), math.pi / 2), long_x) == pytest.approx(1.0, abs=1e-6)
    turned = OrientedBox(ROOM_POINT, (1.0, 1.0, 1.0), math.pi / 4)  # octagon 2(sqrt 2 - 1) over the union
    overlap = 2.0 * (math.sqrt(2.0) - 1.0)
    assert prediction_iou(turned, cube()) == pytest.approx(overlap / (2.0 - overlap), abs=1e-6)
    assert prediction_iou(None, cube()) == 0.0
    assert prediction_iou(OrientedBox(ROOM_POINT, (0.0, 0.0, 0.0)), cube()) == 0.0
    assert prediction_iou(OrientedBox(ROOM_POINT, (1.0, 1.0, 0.0)), cube()) == 0.0
    assert prediction_iou(cube(), OrientedBox(ROOM_POINT, (0.0, 0.0, 0.0))) == 0.0


def test_iou_of_axis_aligned_boxes_is_the_protocols():
    rng = np.random.default_rng(3)
    for _ in range(200):
        a = OrientedBox(rng.uniform(0, 8, 3), rng.uniform(0.05, 2.0, 3))
        b = OrientedBox(np.add(a.center, rng.normal(0, 0.3, 3)), rng.uniform(0.05, 2.0, 3))
        assert prediction_iou(a, b) == pytest.approx(axis_aligned_iou(a, b), abs=1e-6)


def test_scanrefer_accuracy_switches_where_the_iou_crosses_each_threshold():
    half, quarter = shift_for_iou(0.5), shift_for_iou(0.25)  # 1/3 and 0.6 of the side
    items = [
        (cube(), cube(), True),  # IoU 1
        (cube(half - 0.01), cube(), False),  # just above 0.5
        (cube(half + 0.01), cube(), True),  # just below 0.5, above 0.25
        (cube(quarter - 0.01), cube(), False),  # just above 0.25
        (cube(quarter + 0.01), cube(), False),  # just below 0.25
        (None, cube(), True),  # no box: a miss
    ]
    scores = score_scanrefer(items)
    assert scores['Acc@0.5'] == pytest.approx(100 * 2 / 6) and scores['Acc@0.25'] == pytest.approx(100 * 4 / 6)
    assert scores['count'] == 6
    assert scores['unique'] == pytest.approx({'Acc@0.25': 100 * 2 / 3, 'Acc@0.5': 100 / 3, 'count': 3})
    assert scores['multiple'] == pytest.approx({'Acc@0.25': 100 * 2 / 3, 'Acc@0.5': 100 / 3, 'count': 3})


def test_scanrefer_truth_as_prediction_and_edge_cases():
    perfect = score_scanrefer([(cube(), cube(), True), (cube(2.0), cube(2.0), True)])
    assert perfect['Acc@0.25'] == perfect['Acc@0.5'] == 100.0 and perfect['unique']['Acc@0.5'] == 100.0
    assert perfect['multiple']['count'] == 0 and math.isnan(perfect['multiple']['Acc@0.5'])
    with pytest.raises(ValueError, match='at least one'):
        score_scanrefer([])


def test_multi3drefer_one_hit_and_one_extra_prediction():
    far = cube(5.0)
    scores = score_multi3drefer([([cube(), far], [cube(), cube(2.0)], 'mt')])  # TP 1: F1 = 2 * 1 / (2 + 2)
    assert scores['F1@0.25'] == scores['F1@0.5'] == 50.0
    duplicate = score_multi3drefer([([cube(), cube()], [cube()], 'st_w_d')])  # one to one: TP 1 of 2 + 1
    assert duplicate['F1@0.5'] == pytest.approx(100 * 2 / 3)


def test_multi3drefer_pairs_boxes_to_the_largest_summed_iou():
    # Greedy pairing would give the first prediction the first target (IoU 0.74) and leave the second an IoU
    # of 0.18; the one-to-one pairing of largest summed IoU gives them 0.6 and 0.54: both true at 0.5.
    truth = [cube(0.0), cube(0.4)]
    predicted = [cube(0.15), cube(-0.3)]
    assert shifted_iou(0.15) + shifted_iou(0.7) < shifted_iou(0.25) + shifted_iou(0.3)
    scores = score_multi3drefer([(predicted, truth, 'mt')])
    assert scores['F1@0.5'] == pytest.approx(100.0)


def test_multi3drefer_zero_target_queries_and_types():
    items = [
        ([], [], 'zt_w_d'),  # nothing predicted: 1
        ([cube()], [], 'zt_wo_d'),  # anything predicted: 0
        ([cube()], [cube()], 'st_w_d'),  # 1
        ([cube(shift_for_iou(0.5) + 0.01)], [cube()], 'st_wo_d'),  # IoU in [0.25, 0.5): 1 at 0.25, 0 at 0.5
        ([], [cube(), cube(2.0)], 'mt'),  # nothing predicted for two targets: 0
    ]
    scores = score_multi3drefer(items)
    assert scores['count'] == 5
    assert scores['F1@0.25'] == pytest.approx(100 * 3 / 5) and scores['F1@0.5'] == pytest.approx(100 * 2 / 5)
    assert set(scores['by_type']) == set(MULTI3DREFER_TYPES)
    assert scores['by_type']['zt_w_d'] == {'F1@0.25': 100.0, 'F1@0.5': 100.0, 'count': 1}
    assert scores['by_type']['zt_wo_d'] == {'F1@0.25': 0.0, 'F1@0.5': 0.0, 'count': 1}
    assert scores['by_type']['st_wo_d'] == {'F1@0.25': 100.0, 'F1@0.5': 0.0, 'count': 1}
    assert scores['by_type']['mt'] == {'F1@0.25': 0.0, 'F1@0.5': 0.0, 'count': 1}
    perfect = score_multi3drefer([([cube(), cube(2.0)], [cube(2.0), cube()], 'mt'), ([], [], 'zt_w_d')])
    assert perfect['F1@0.25'] == perfect['F1@0.5'] == 100.0
    assert math.isnan(perfect['by_type']['st_w_d']['F1@0.5'])


@pytest.mark.parametrize(
    'item, message',
    [
        (([], [], 'st'), 'not one of'),
        (([], [cube()], 'zt_w_d'), '1 true boxes'),
        (([cube()], [], 'mt'), '0 true boxes'),
    ],
)
def test_multi3drefer_rejects_inconsistent_annotations(item, message):
    with pytest.raises(ValueError, match=message):
        score_multi3drefer([item])


@pytest.mark.skipif(shutil.which('java') is None, reason='the caption metrics need Java')
def test_scan2cap_counts_a_caption_only_where_its_box_reaches_the_iou():
    items = [
        ('a red chair', cube(), cube(), ['a red chair', 'sos the chair eos']),  # IoU 1
        ('a chair', cube(shift_for_iou(0.5) + 0.01), cube(), ['a chair']),  # IoU in [0.25, 0.5)
        ('a chair', cube(3.0), cube(), ['a chair']),  # IoU 0
        ('a chair', None, cube(), ['a chair']),  # no box
    ]
    scores = score_scan2cap(items)
    assert scores['count'] == 4
    # Captions and references in Scan2Cap's "sos ... eos" (once), scored by pycocoevalcap; an item counts where its
    # box reaches the IoU (a missing box's caption is not scored).
    _, per_item = caption_scores(
        {
            '0': ('sos a red chair eos', ['sos a red chair eos', 'sos the chair eos']),
            '1': ('sos a chair eos', ['sos a chair eos']),
            '2': ('sos a chair eos', ['sos a chair eos']),
            '3': ('sos eos', ['sos a chair eos']),
        }
    )
    for name in ('CIDEr', 'BLEU-4', 'METEOR', 'ROUGE_L'):
        values = per_item[name]
        assert values[0] > 0 and values[1] > 0
        assert scores[f'{name}@0.5'] == pytest.approx(values[0] / 4)
        assert scores[f'{name}@0.25'] == pytest.approx((values[0] + values[1]) / 4)
    with pytest.raises(ValueError, match='at least one'):
        score_scan2cap([])
