"""gpt4scene-eval end to end on a generated benchmark (gpt4scene-make-scene --questions): the robot's pipeline
offline, every question through the SceneQuery code, scores, report; the oracle, the tiny model, resuming,
shards and merging, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gpt4scene_ros.eval.benchmarks import read_questions
from gpt4scene_ros.eval.scoring import read_ground_truth
from gpt4scene_ros.objects.boxes import OrientedBox, box_iou
from gpt4scene_ros.tools.eval import main
from gpt4scene_ros.tools.make_scene import main as make_scene

FAST = ['--stride', '2']  # 20 of the 40 frames: the room is covered, and a run takes seconds


@pytest.fixture(scope='module')
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp('bench')
    args = ['--frames', '40', '--width', '320', '--height', '240', '--seed', '7', '--questions', str(root)]
    assert make_scene([str(root / 'sequence'), *args]) == 0
    return root


@pytest.fixture(scope='module')
def oracle_refer(bench, tmp_path_factory):
    """The oracle on ScanRefer, as shard 0 of 2 (the benchmark's one scene falls in it)."""
    out = tmp_path_factory.mktemp('oracle-refer')
    args = ['run', '--benchmark', 'scanrefer', '--annotations', str(bench / 'scanrefer.json')]
    assert main([*args, '--scans', str(bench / 'scans'), '--out', str(out), '--oracle', '--shard', '0/2', *FAST]) == 0
    return out


def test_the_oracle_grounds_nearly_every_reference_and_the_scores_agree_with_the_boxes(bench, oracle_refer):
    questions = read_questions('scanrefer', bench / 'scanrefer.json')
    predictions = json.loads((oracle_refer / 'predictions.json').read_text())
    scores = json.loads((oracle_refer / 'scores.json').read_text())
    assert len(predictions) == len(questions) >= 8 and scores['missing'] == 0
    # Ids, boxes and IoU agree from the ground-truth files through the map to the score: recompute Acc@0.25 from
    # the predicted boxes and the ScanNet ground truth.
    truth = read_ground_truth(bench / 'scans', [q.scene_id for q in questions])
    by_id = {p['question_id']: p for p in predictions}
    ious = []
    for q in questions:
        box = by_id[q.question_id]['boxes'][0]
        ious.append(
            box_iou(OrientedBox(box['center'], box['size'], box['yaw']), truth.boxes[(q.scene_id, q.object_ids[0])])
        )
    assert scores['scores']['Acc@0.25'] == pytest.approx(100.0 * np.mean(np.array(ious) >= 0.25))
    assert scores['scores']['Acc@0.25'] >= 80.0, ious
    assert all(p['answer'].startswith('<OBJ') and p['object_ids'] for p in predictions)
    assert all(p['images'][0].endswith('bev_marked.png') and len(p['images']) == 9 for p in predictions)
    summary = json.loads((oracle_refer / 'summary.json').read_text())
    assert summary['ok'] == [questions[0].scene_id] and summary['failed'] == {}
    report = (oracle_refer / 'report.html').read_text()
    assert 'Acc@0.25' in report and 'unique' in report and '<img src="scenes/' in report
    for image in predictions[0]['images']:
        assert (oracle_refer / image).is_file()


def test_a_rerun_skips_answered_questions_and_shards_merge_into_the_same_scores(bench, oracle_refer, tmp_path):
    args = ['--benchmark', 'scanrefer', '--annotations', str(bench / 'scanrefer.json'), '--scans', str(bench / 'scans')]
    before = (oracle_refer / 'predictions.json').read_text()
    rerun = ['--out', str(oracle_refer), '--oracle', '--shard', '0/2', '--workers', '2', *FAST]  # the process pool
    assert main(['run', *args, *rerun]) == 0
    summary = json.loads((oracle_refer / 'summary.json').read_text())
    assert summary['records'][0]['answered_before'] == summary['records'][0]['questions'] > 0
    assert json.loads((oracle_refer / 'predictions.json').read_text()) == json.loads(before)
    other = tmp_path / 'shard1'
    assert main(['run', *args, '--out', str(other), '--oracle', '--shard', '1/2']) == 0
    assert json.loads((other / 'predictions.json').read_text()) == []
    merged = tmp_path / 'merged'
    assert main(['merge', *args, '--out', str(merged), str(oracle_refer), str(other)]) == 0
    assert (
        json.loads((merged / 'scores.json').read_text())['scores']
        == json.loads((oracle_refer / 'scores.json').read_text())['scores']
    )


def test_the_oracle_answers_reach_the_caption_metrics_maximum_and_the_tiny_model_runs_the_real_path(
    bench, tiny_models, tmp_path
):
    scans = ['--scans', str(bench / 'scans')]
    qa = ['run', '--benchmark', 'scanqa', '--annotations', str(bench / 'scanqa.json'), *scans]
    assert main([*qa, '--out', str(tmp_path / 'oracle'), '--oracle', '--max-frames', '10', *FAST]) == 0
    oracle = json.loads((tmp_path / 'oracle' / 'scores.json').read_text())['scores']
    assert oracle['EM'] == 100.0 and oracle['EM_refined'] == 100.0 and oracle['BLEU-1'] == pytest.approx(100.0)
    refer = ['run', '--benchmark', 'multi3drefer', '--annotations', str(bench / 'multi3drefer.json'), *scans]
    model = ['-p', 'query_node.backend=transformers', '-p', f'query_node.model={tiny_models / "qwen2-vl"}']
    model += ['-p', 'query_node.max_new_tokens=4', '--frames', '2', '--max-frames', '20']
    assert main([*refer, '--out', str(tmp_path / 'tiny'), *model, *FAST]) == 0
    predictions = json.loads((tmp_path / 'tiny' / 'predictions.json').read_text())
    scores = json.loads((tmp_path / 'tiny' / 'scores.json').read_text())
    assert len(predictions) == scores['questions'] and scores['missing'] == 0
    assert all(p['model_ms'] > 0 and len(p['images']) == 3 and 'error' not in p for p in predictions)
    # A random model names no objects: it scores only the zero-target queries (right when nothing is named).
    by_type = scores['scores']['by_type']
    assert by_type['zt_wo_d']['F1@0.25'] == 100.0 and by_type['mt']['F1@0.25'] == 0.0


def test_bad_input_exits_2_naming_the_file_and_missing_scenes_are_listed(bench, tmp_path, capsys):
    scans = ['--scans', str(bench / 'scans')]
    refer = ['--benchmark', 'scanrefer', '--annotations', str(bench / 'scanrefer.json')]
    code = main(
        [
            'run',
            '--benchmark',
            'scanqa',
            '--annotations',
            str(bench / 'scanrefer.json'),
            *scans,
            '--out',
            str(tmp_path / 'x'),
        ]
    )
    assert code == 2
    assert 'scanrefer.json: not a scanqa file' in capsys.readouterr().err
    assert main(['run', *refer, *scans, '--out', str(tmp_path), '-p', 'query_node.nope=1']) == 2
    assert '-p query_node.nope=1' in capsys.readouterr().err
    questions = json.loads((bench / 'scanrefer.json').read_text())
    annotations = tmp_path / 'missing.json'
    annotations.write_text(json.dumps([dict(q, scene_id='scene0999_00') for q in questions[:2]]))
    out = tmp_path / 'missing'
    assert (
        main(
            [
                'run',
                '--benchmark',
                'scanrefer',
                '--annotations',
                str(annotations),
                *scans,
                '--out',
                str(out),
                '--oracle',
            ]
        )
        == 0
    )
    summary = json.loads((out / 'summary.json').read_text())
    assert 'scene0999_00' in summary['skipped'] and summary['ok'] == []
    truth = read_ground_truth(bench / 'scans', [questions[0]['scene_id']])
    box = truth.boxes[(questions[0]['scene_id'], int(questions[0]['object_id']))]
    right = {'center': list(box.center), 'size': list(box.size), 'yaw': box.yaw}
    first = f'{questions[0]["scene_id"]}|{questions[0]["object_id"]}|{questions[0]["ann_id"]}'
    predictions = tmp_path / 'predictions.json'
    predictions.write_text(
        json.dumps([{'question_id': 'nope', 'answer': ''}, {'question_id': first, 'answer': '', 'boxes': [right]}])
    )
    scores_file = tmp_path / 'scores.json'
    assert main(['score', *refer, *scans, '--predictions', str(predictions), '--out', str(scores_file)]) == 0
    scores = json.loads(scores_file.read_text())
    assert scores['unknown_question_ids'] == ['nope'] and scores['predicted'] == 1
    assert scores['scores']['Acc@0.25'] == pytest.approx(100.0 / len(questions))
    assert main(['score', *refer, '--predictions', str(predictions), '--out', str(scores_file)]) == 2
    assert 'needs --scans' in capsys.readouterr().err
    predictions.write_text('{"question_id": 1}')
    assert main(['score', *refer, *scans, '--predictions', str(predictions), '--out', str(scores_file)]) == 2
    assert 'predictions.json: expected a JSON list' in capsys.readouterr().err


def test_questions_the_model_failed_on_are_asked_again_on_the_next_run(bench, tmp_path):
    from chat_server import ChatServer

    from gpt4scene_ros.eval.oracle import OracleBackend

    reply = OracleBackend()  # what the stand-in server's model says
    reply.set_answer('<OBJ001>')
    down = ChatServer(reply)
    down.close()
    out = tmp_path / 'run'
    annotations = tmp_path / 'three.json'  # three questions: each waits for the dead server until its timeout
    annotations.write_text(json.dumps(json.loads((bench / 'scanrefer.json').read_text())[:3]))
    args = ['run', '--benchmark', 'scanrefer', '--annotations', str(annotations)]
    args += ['--scans', str(bench / 'scans'), '--out', str(out), '--max-frames', '6', *FAST]
    openai = ['-p', 'query_node.backend=openai', '-p', 'query_node.model=m', '-p', 'query_node.query_timeout_s=0.5']
    assert main([*args, *openai, '-p', f'query_node.base_url={down.base_url}']) == 0
    record = json.loads((out / 'summary.json').read_text())['records'][0]
    assert record['model_failures'] == record['questions'] > 0
    assert json.loads((out / 'predictions.json').read_text()) == []
    up = ChatServer(reply)
    try:
        assert main([*args, *openai, '-p', f'query_node.base_url={up.base_url}']) == 0
    finally:
        up.close()
    predictions = json.loads((out / 'predictions.json').read_text())
    assert len(predictions) == record['questions'] and all(p['answer'] == '<OBJ001>' for p in predictions)
    assert len(up.requests) == record['questions']


def test_ground_truth_boxes_shifted_by_half_their_length_score_the_iou_derived_accuracy(bench, tmp_path):
    """Each true box moved along x by half its length overlaps it with IoU (L - L/2) / (L + L/2) = 1/3:
    every reference counts at 0.25 and none at 0.5; unmoved, every one counts at both."""
    questions = read_questions('scanrefer', bench / 'scanrefer.json')
    truth = read_ground_truth(bench / 'scans', [q.scene_id for q in questions])
    for shift, expected in ((0.0, (100.0, 100.0)), (0.5, (100.0, 0.0))):
        predictions = []
        for q in questions:
            box = truth.boxes[(q.scene_id, q.object_ids[0])]
            center = [box.center[0] + shift * box.size[0], box.center[1], box.center[2]]
            predictions.append(
                {
                    'question_id': q.question_id,
                    'answer': '',
                    'boxes': [{'center': center, 'size': list(box.size), 'yaw': 0.0}],
                }
            )
        path = tmp_path / 'predictions.json'
        path.write_text(json.dumps(predictions))
        args = ['score', '--benchmark', 'scanrefer', '--annotations', str(bench / 'scanrefer.json')]
        assert (
            main(
                [*args, '--scans', str(bench / 'scans'), '--predictions', str(path), '--out', str(tmp_path / 's.json')]
            )
            == 0
        )
        scores = json.loads((tmp_path / 's.json').read_text())['scores']
        assert (scores['Acc@0.25'], scores['Acc@0.5']) == pytest.approx(expected)
