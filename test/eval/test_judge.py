"""OpenEQA's LLM-Match against a local stand-in judge (a real HTTP server): what the judge receives, the key kept
out of every message, failures leaving questions unscored and a rerun asking only about those."""

from __future__ import annotations

import json
import logging

import pytest
from chat_server import ChatServer

from gpt4scene_ros.eval.benchmarks import Question
from gpt4scene_ros.eval.judge import Judge, JudgeError, JudgeSetupError, mark_score, parse_mark
from gpt4scene_ros.eval.oracle import OracleBackend
from gpt4scene_ros.eval.scoring import score

KEY = 'sk-test-0123456789-secret'
QUESTIONS = [
    Question('q1', 'scene', 'What colour is the sofa?', ('red',), category='attribute recognition'),
    Question('q2', 'scene', 'Where is the mug?', ('on the table',), category='object localization'),
    Question('q3', 'scene', 'Is the door open?', ('no',), category='object state recognition'),
]
PREDICTIONS = [
    {'question_id': 'q1', 'answer': 'It is red.'},
    {'question_id': 'q2', 'answer': 'on the table'},
    {'question_id': 'q4', 'answer': 'not a question of the set'},
]


@pytest.fixture
def judge_server():
    reply = OracleBackend()  # the stand-in judge's reply, fixed per test
    server = ChatServer(reply, api_key=KEY)
    yield server, reply
    server.close()


def test_marks_are_parsed_and_scored_as_openeqa_does():
    assert [parse_mark(text) for text in ('5', 'Mark: 3', ' 1.', 'I give it a 4 out of 5')] == [5, 3, 1, 4]
    for bad in ('', 'great', '0', '6', '10', '2.5'):
        with pytest.raises(JudgeError):
            parse_mark(bad)
    assert [mark_score(m) for m in (1, 2, 3, 4, 5)] == [0.0, 25.0, 50.0, 75.0, 100.0]


def test_the_judge_gets_question_reference_and_prediction_and_the_key_only_in_its_header(
    judge_server, monkeypatch, caplog
):
    server, reply = judge_server
    monkeypatch.setenv('JUDGE_KEY', KEY)
    reply.set_answer('4')
    judge = Judge(server.base_url, 'judge-model', 'JUDGE_KEY')
    new_marks = []
    with caplog.at_level(logging.DEBUG):
        result = score('openeqa', QUESTIONS, PREDICTIONS, judge=judge, on_mark=lambda q, m: new_marks.append((q, m)))
    judge.close()
    # q3 has no prediction: it is judged as "(no answer)" like any wrong answer.
    assert result['scores']['LLM-Match'] == pytest.approx(75.0)
    assert result['missing'] == 1 and result['unknown_question_ids'] == ['q4']
    assert result['by_category']['attribute recognition'] == {'LLM-Match': 75.0, 'count': 1}
    assert new_marks == [('q1', 4), ('q2', 4), ('q3', 4)]
    assert len(server.requests) == 3
    body = json.loads(server.requests[0]['body'])
    assert body['model'] == 'judge-model'
    text = body['messages'][0]['content']
    assert 'What colour is the sofa?' in text and 'Reference answer: red' in text and 'Answer given: It is red.' in text
    assert server.requests[0]['headers']['Authorization'] == f'Bearer {KEY}'
    assert all(KEY not in json.dumps(r['body'].decode()) for r in server.requests)
    assert KEY not in caplog.text and KEY not in json.dumps(result)


def test_a_judge_that_fails_leaves_questions_unscored_and_a_rerun_asks_only_those(judge_server, monkeypatch, caplog):
    server, reply = judge_server
    monkeypatch.setenv('JUDGE_KEY', KEY)
    judge = Judge(server.base_url, 'judge-model', 'JUDGE_KEY', timeout_s=5.0)
    reply.set_answer('no idea')  # an unparseable mark
    first = score('openeqa', QUESTIONS[:1], PREDICTIONS, judge=judge)
    assert first['unscored'] == ['q1'] and first['marks'] == {}
    server.mode = 'error500'
    second = score('openeqa', QUESTIONS, PREDICTIONS, judge=judge, marks={'q1': 5})
    assert second['marks'] == {'q1': 5} and second['unscored'] == ['q2', 'q3']
    assert second['scores']['LLM-Match'] == 100.0  # over the marked ones; the unscored are listed
    server.mode = 'ok'
    reply.set_answer('2')
    asked = len(server.requests)
    third = score('openeqa', QUESTIONS, PREDICTIONS, judge=judge, marks=second['marks'])
    assert len(server.requests) - asked == 2, 'only the unmarked questions are asked again'
    assert third['marks'] == {'q1': 5, 'q2': 2, 'q3': 2} and third['unscored'] == []
    assert third['scores']['LLM-Match'] == pytest.approx((100 + 25 + 25) / 3)
    judge.close()
    server.close()
    down = Judge(server.base_url, 'judge-model', 'JUDGE_KEY', timeout_s=2.0)
    with pytest.raises(JudgeError, match='unreachable'):
        down.mark('q', 'a', 'b')
    assert KEY not in caplog.text


def test_a_judge_without_url_model_or_key_is_refused_naming_the_option(monkeypatch):
    monkeypatch.delenv('NO_SUCH_KEY', raising=False)
    with pytest.raises(JudgeSetupError, match='--judge-base-url'):
        Judge('', 'm')
    with pytest.raises(JudgeSetupError, match='--judge-model'):
        Judge('http://127.0.0.1:9/v1', '')
    with pytest.raises(JudgeSetupError, match='--judge-api-key-env NO_SUCH_KEY'):
        Judge('http://127.0.0.1:9/v1', 'm', 'NO_SUCH_KEY')
