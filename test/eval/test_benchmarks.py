"""The benchmarks' question files: the real ScanQA, SQA3D and OpenEQA files parse whole; files of another benchmark
or with fields missing are refused naming the file and the fields."""

from __future__ import annotations

import json

import pytest
from conftest import REPO_ROOT

from gpt4scene_ros.eval.benchmarks import AnnotationError, by_scene, read_questions, scene_folder

DATA = REPO_ROOT.parent / 'shared' / 'data'
SCANQA = DATA / 'qa' / 'scanqa' / 'ScanQA_v1.0_val.json'
SQA3D_QUESTIONS = DATA / 'qa' / 'sqa3d' / 'balanced' / 'v1_balanced_questions_val_scannetv2.json'
SQA3D_ANNOTATIONS = DATA / 'qa' / 'sqa3d' / 'balanced' / 'v1_balanced_sqa_annotations_val_scannetv2.json'
OPENEQA = DATA / 'openeqa' / 'open-eqa-v0.json'


def _need(path):
    if not path.exists():
        pytest.skip(f'{path} not here (../shared/data is absent on users machines)')


def test_every_question_of_the_real_scanqa_file_parses():
    _need(SCANQA)
    questions = read_questions('scanqa', SCANQA)
    assert len(questions) == 4675
    assert len(by_scene(questions)) == 71
    assert all(q.answers and q.question and q.scene_id.startswith('scene') for q in questions)
    first = questions[0]
    assert (first.question_id, first.answers, first.object_ids[:2]) == (
        'val-scene0011-0',
        ('dark brown', 'brown'),
        (4, 5),
    )


def test_every_question_of_the_real_sqa3d_pair_parses_from_either_file():
    _need(SQA3D_QUESTIONS)
    questions = read_questions('sqa3d', SQA3D_QUESTIONS)
    assert len(questions) == 3519
    assert len(by_scene(questions)) == 67
    assert all(q.situation and q.answers for q in questions)
    assert read_questions('sqa3d', SQA3D_ANNOTATIONS) == questions


def test_every_question_of_the_real_openeqa_file_parses_with_its_episode_as_scene():
    _need(OPENEQA)
    questions = read_questions('openeqa', OPENEQA)
    assert len(questions) == 1636
    assert sum(q.scene_id.startswith('scannet-v0/') for q in questions) == 1079
    assert sum(q.scene_id.startswith('hm3d-v0/') for q in questions) == 557
    assert len({q.category for q in questions}) == 7


def test_a_file_of_another_benchmark_is_refused_naming_the_file_and_the_fields(tmp_path):
    openeqa = tmp_path / 'open-eqa.json'
    openeqa.write_text(json.dumps([{'question_id': 'a', 'question': 'q', 'answer': 'x', 'category': 'c'}]))
    with pytest.raises(
        AnnotationError, match=r"open-eqa.json: not a scanqa file: record 0 lacks the fields \['scene_id', 'answers'\]"
    ):
        read_questions('scanqa', openeqa)
    with pytest.raises(AnnotationError, match=r"lacks the fields \['episode_history'\]"):
        read_questions('openeqa', openeqa)
    scanrefer = tmp_path / 'scanrefer.json'
    scanrefer.write_text(json.dumps([{'scene_id': 's', 'object_id': '3', 'ann_id': '0', 'description': 'the chair'}]))
    with pytest.raises(
        AnnotationError, match=r"not a multi3drefer file: record 0 lacks the fields \['object_ids', 'eval_type'\]"
    ):
        read_questions('multi3drefer', scanrefer)
    for text, match in (
        ('{"a": 1}', 'expected a non-empty JSON list'),
        ('[]', 'expected a non-empty JSON list'),
        ('not json', 'not a JSON file'),
    ):
        bad = tmp_path / 'bad.json'
        bad.write_text(text)
        with pytest.raises(AnnotationError, match=match):
            read_questions('scanqa', bad)
    with pytest.raises(AnnotationError, match='no such annotation file'):
        read_questions('scanqa', tmp_path / 'missing.json')
    with pytest.raises(AnnotationError, match='unknown benchmark'):
        read_questions('scannet', scanrefer)


def test_scanrefer_ids_scan2cap_groups_captions_and_duplicate_ids_are_refused(tmp_path):
    records = [
        {
            'scene_id': 'scene0001_00',
            'object_id': '3',
            'ann_id': '0',
            'description': 'the red chair',
            'object_name': 'chair',
        },
        {'scene_id': 'scene0001_00', 'object_id': '3', 'ann_id': '1', 'description': 'a chair by the door'},
        {'scene_id': 'scene0002_00', 'object_id': 7, 'ann_id': '0', 'description': 'the lamp'},
    ]
    path = tmp_path / 'ScanRefer_filtered_val.json'
    path.write_text(json.dumps(records))
    refer = read_questions('scanrefer', path)
    assert [q.question_id for q in refer] == ['scene0001_00|3|0', 'scene0001_00|3|1', 'scene0002_00|7|0']
    assert refer[0].object_ids == (3,) and refer[0].question == 'the red chair'
    captions = read_questions('scan2cap', path)
    assert [(q.question_id, q.answers) for q in captions] == [
        ('scene0001_00|3', ('the red chair', 'a chair by the door')),
        ('scene0002_00|7', ('the lamp',)),
    ]
    path.write_text(json.dumps(records + records[:1]))
    with pytest.raises(AnnotationError, match="question_id 'scene0001_00|3|0' appears twice"):
        read_questions('scanrefer', path)


def test_scene_folders_are_found_by_id_or_by_the_episode_name(tmp_path):
    (tmp_path / 'scene0001_00').mkdir()
    (tmp_path / 'scannet-v0' / '002-scannet-scene0709_00').mkdir(parents=True)
    (tmp_path / '000-hm3d-BFRyYbPCCPE').mkdir()
    assert scene_folder(tmp_path, 'scene0001_00') == tmp_path / 'scene0001_00'
    assert (
        scene_folder(tmp_path, 'scannet-v0/002-scannet-scene0709_00')
        == tmp_path / 'scannet-v0' / '002-scannet-scene0709_00'
    )
    assert scene_folder(tmp_path, 'hm3d-v0/000-hm3d-BFRyYbPCCPE') == tmp_path / '000-hm3d-BFRyYbPCCPE'
    assert scene_folder(tmp_path, 'scene0999_00') is None
