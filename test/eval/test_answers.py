"""Tests of gpt4scene_ros.eval.answers: answer cleaning and matching, SQA3D question types, the ScanQA and SQA3D
scores, and the caption metrics checked against pycocoevalcap's own scorers (those need Java)."""

import json
import math
import shutil

import pytest
from conftest import SHARED_DATA
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from gpt4scene_ros.eval import answers
from gpt4scene_ros.eval.answers import (
    CAPTION_METRICS,
    MissingJavaError,
    answer_match,
    caption_scores,
    clean_answer,
    question_type,
    score_scanqa,
    score_sqa3d,
)

SCANQA_VAL = SHARED_DATA / 'qa' / 'scanqa' / 'ScanQA_v1.0_val.json'
SQA3D_DIR = SHARED_DATA / 'qa' / 'sqa3d' / 'balanced'
needs_java = pytest.mark.skipif(shutil.which('java') is None, reason='the caption metrics need Java')


@pytest.mark.parametrize(
    'raw, cleaned',
    [
        ('  The  Brown Chair ', 'brown chair'),  # lower case, spaces trimmed and collapsed, article dropped
        ('an apple and a pear', 'apple and pear'),
        ('Left.', 'left'),  # punctuation other than ,'-: dropped
        ("black, white-ish: it's", "black, white-ish: it's"),
        ('don’t', 'dont'),  # a curly apostrophe is dropped, not straightened
        ('letf of the tv', 'left of TV'),  # the typo list; "tv" becomes upper case "TV"
        ('rigth behine chai', 'right behind chair'),
        ('10 oclock', "ten o'clock"),
        ("o'  clock", "o'clock"),
        ('2 chairs, 0 lamps, none', 'two chairs, zero lamps, zero'),  # numbers 0-20 and 23 as words
        ('23 and 21', 'twenty-three and 21'),
        ('mat2', 'mat'),  # a digit glued to a word's end
        ('a 2', 'two'),  # numbers first, then articles
        ('walking backwards', 'walking backward'),
        ('table .', 'table '),  # spaces are trimmed before punctuation goes (the protocol's order)
    ],
)
def test_clean_answer_rules(raw, cleaned):
    assert clean_answer(raw) == cleaned


@pytest.mark.parametrize(
    'prediction, references, expected',
    [
        ('Brown.', ['dark brown', 'brown'], (True, True)),  # exact after cleaning, whichever reference
        ('2', ['two'], (True, True)),
        ('table .', ['table'], (True, True)),  # a prediction's final period goes before cleaning
        ('dark brown', ['brown'], (False, True)),  # the reference inside the prediction
        ('brown', ['dark brown wood'], (False, True)),  # the prediction inside the reference
        ('night stand', ['a nightstand'], (False, True)),  # compared without whitespace
        ('red', ['blue', 'green'], (False, False)),
        ('', ['brown'], (False, False)),  # no answer matches nothing, even by containment
        ('...', ['brown'], (False, False)),
        ('\n', ['brown'], (False, False)),
    ],
)
def test_answer_match(prediction, references, expected):
    assert answer_match(prediction, references) == expected


@pytest.mark.parametrize(
    'question, kind',
    [
        ('What is in front of me?', 'what'),
        ('  is the door open?', 'is'),
        ("Isn't the lamp on?", 'is'),  # a prefix test, as SQA3D's get_sqa_question_type
        ('HOW many chairs are there?', 'how'),
        ('Can I sit on my left?', 'can'),
        ('Which way is the door?', 'which'),
        ('Where is the sofa?', 'other'),
        ('', 'other'),
    ],
)
def test_question_type(question, kind):
    assert question_type(question) == kind


def test_score_sqa3d_overall_and_by_type():
    items = [
        ('Yes.', ['yes'], 'Is the tv on?'),
        ('2', ['two'], 'How many chairs are there?'),
        ('left', ['left'], 'Which way should I go?'),
        ('table', ['small table'], 'What is in front of me?'),  # refined only
    ]
    scores = score_sqa3d(items)
    assert scores['EM'] == 75.0 and scores['EM_refined'] == 100.0 and scores['count'] == 4
    assert set(scores['by_type']) == {'what', 'is', 'how', 'can', 'which', 'other'}
    assert scores['by_type']['what'] == {'EM': 0.0, 'EM_refined': 100.0, 'count': 1}
    assert scores['by_type']['is'] == {'EM': 100.0, 'EM_refined': 100.0, 'count': 1}
    assert scores['by_type']['can']['count'] == 0 and math.isnan(scores['by_type']['can']['EM'])


@needs_java
def test_score_scanqa_cleans_the_prediction_not_the_references():
    items = [('Brown.', ['brown']), ('2', ['two', '2 chairs']), ('The TV', ['tv']), ('red', ['blue'])]
    scores = score_scanqa(items)
    assert scores['EM'] == 75.0 and scores['EM_refined'] == 75.0
    # The caption metrics are those of the cleaned predictions against the raw references.
    corpus, _ = caption_scores(
        {'0': ('brown', ['brown']), '1': ('two', ['two', '2 chairs']), '2': ('TV', ['tv']), '3': ('red', ['blue'])}
    )
    assert {name: scores[name] for name in CAPTION_METRICS} == corpus


def test_missing_java_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv('PATH', str(tmp_path))  # no java there
    monkeypatch.setattr(answers, 'Meteor', lambda: pytest.fail('METEOR started without Java'))
    with pytest.raises(MissingJavaError, match=r'(?s)Java.*apt-get install default-jre-headless'):
        caption_scores({'a': ('a chair', ['a chair'])})
    with pytest.raises(RuntimeError, match='Java'):
        score_scanqa([('a chair', ['a chair'])])


def test_caption_scores_checks_its_input():
    with pytest.raises(ValueError, match='at least one'):
        caption_scores({})
    with pytest.raises(ValueError, match="'b' has no reference"):
        caption_scores({'a': ('x', ['x']), 'b': ('x', [])})


CAPTION_PAIRS = {
    # Exact captions of four words or more whose references agree: each metric's maximum.
    'perfect': ('a red chair stands next to the big window', ['a red chair stands next to the big window']),
    'perfect twice': ('the brown wooden table is in the kitchen', ['the brown wooden table is in the kitchen'] * 2),
    # A carriage return or U+2028 must not shift the tokenizer's output lines onto the next items.
    'line breaks': ('a tall lamp\rbeside the\u2028bed', ['a tall lamp beside the bed']),
    'one word': ('lamp', ['lamp']),  # only unigrams: CIDEr's maximum is a quarter of the four-order one
    'partial': ('a red chair by the door', ['a red chair next to the window', 'the chair by the door']),
    'wrong': ('green sofa near a door', ['white cabinet under sink', 'small white cabinet']),  # no word shared
    'empty': ('', ['black']),  # an empty prediction scores 0 and breaks nothing
}


def _scanqa_questions():
    if not SCANQA_VAL.exists():
        pytest.skip(f'ScanQA annotations not found at {SCANQA_VAL}')
    return json.loads(SCANQA_VAL.read_text())


def _scanqa_sample_pairs():
    """Every 10th ScanQA question whose first answer cleaning leaves alone (up to case), as score_scanqa pairs it:
    the cleaned answer against the raw references. (Cleaning turns a "2" into "two", which a raw "2" among the
    references then misses: such items cannot reach the caption metrics' maximum.)"""
    if not SCANQA_VAL.exists():
        return {}
    questions = json.loads(SCANQA_VAL.read_text())
    unchanged = [q for q in questions if clean_answer(q['answers'][0]).lower() == q['answers'][0].lower()]
    return {f'scanqa {q["question_id"]}': (clean_answer(q['answers'][0]), q['answers']) for q in unchanged[::10]}


def _one_line(text):
    return ' '.join(text.splitlines())


@pytest.fixture(scope='module')
def caption_results():
    """caption_scores of CAPTION_PAIRS and a fixed sample of ScanQA (when present), and pycocoevalcap's
    tokenizer and scorers called directly on the same captions (put on one line each).

    One scoring run for the module: METEOR's Java process takes several seconds of CPU to start, so the direct
    call's process is lent to caption_scores, which must end it.
    """
    if shutil.which('java') is None:
        pytest.skip('the caption metrics need Java')
    pairs = {**CAPTION_PAIRS, **_scanqa_sample_pairs()}
    meteor_process = answers._running_meteor()  # the process caption_scores uses: one Java start
    tokenizer = PTBTokenizer()
    candidates = tokenizer.tokenize({k: [{'caption': _one_line(p)}] for k, (p, _) in pairs.items()})
    references = tokenizer.tokenize({k: [{'caption': _one_line(r)} for r in refs] for k, (_, refs) in pairs.items()})
    bleu, bleu_items = Bleu(4).compute_score(references, candidates)
    meteor, meteor_items = meteor_process.compute_score(references, candidates)
    rouge, rouge_items = Rouge().compute_score(references, candidates)
    cider, cider_items = Cider().compute_score(references, candidates)
    direct = (
        dict(zip(CAPTION_METRICS, [*bleu, meteor, rouge, cider])),
        dict(zip(CAPTION_METRICS, [*bleu_items, meteor_items, rouge_items, list(cider_items)])),
    )
    corpus, per_item = caption_scores(pairs)
    by_key = {name: dict(zip(pairs, values)) for name, values in per_item.items()}
    return pairs, (corpus, per_item, by_key), direct


@needs_java
def test_caption_scores_equal_pycocoevalcap_in_percent(caption_results):
    _, (corpus, per_item, _), (direct_corpus, direct_items) = caption_results
    assert set(corpus) == set(per_item) == set(CAPTION_METRICS)
    for name in CAPTION_METRICS:
        assert corpus[name] == pytest.approx(100.0 * direct_corpus[name], rel=1e-12, abs=1e-12), name
        assert per_item[name] == pytest.approx([100.0 * v for v in direct_items[name]], rel=1e-12, abs=1e-12), name


@needs_java
def test_caption_scores_reach_each_metrics_maximum(caption_results):
    pairs, (corpus, per_item, item), _ = caption_results
    for key in ('perfect', 'perfect twice', 'line breaks'):
        for name in ('BLEU-1', 'BLEU-2', 'BLEU-3', 'BLEU-4', 'METEOR', 'ROUGE_L'):
            assert item[name][key] == pytest.approx(100.0, abs=1e-6), (name, key)
        assert item['CIDEr'][key] == pytest.approx(1000.0), key  # pycocoevalcap's CIDEr is 10x a mean cosine
    assert item['CIDEr']['one word'] == pytest.approx(250.0)  # 1 of the 4 n-gram orders has n-grams
    assert item['METEOR']['one word'] == item['ROUGE_L']['one word'] == 100.0
    assert item['BLEU-4']['one word'] < 0.01  # a one-word sentence has no 4-grams: smoothed to nearly 0
    assert all(values['empty'] == 0.0 for values in item.values())
    assert 0.0 < item['CIDEr']['partial'] < 1000.0 and item['CIDEr']['wrong'] == 0.0
    assert corpus['CIDEr'] == pytest.approx(sum(per_item['CIDEr']) / len(pairs))
    assert corpus['ROUGE_L'] == pytest.approx(sum(per_item['ROUGE_L']) / len(pairs))


def test_scanqa_val_every_question_parses_and_its_references_match():
    """All 4675 questions of ScanQA val, their first answer as the prediction: EM and EM_refined 100."""
    questions = _scanqa_questions()
    assert len(questions) == 4675
    for q in questions:
        assert set(q) >= {'answers', 'object_ids', 'object_names', 'question', 'question_id', 'scene_id'}
        assert q['answers'] and all(isinstance(a, str) and a.strip() for a in q['answers'])
    assert all(answer_match(q['answers'][0], q['answers']) == (True, True) for q in questions)


@needs_java
def test_scanqa_val_sample_reaches_the_caption_metrics_maximum(caption_results):
    """A fixed sample of a few hundred (_scanqa_sample_pairs, scored in the module's one METEOR run): the caption
    metrics of every item at their maximum."""
    if not SCANQA_VAL.exists():
        pytest.skip(f'ScanQA annotations not found at {SCANQA_VAL}')
    pairs, (_, _, item), _ = caption_results
    sample = [key for key in pairs if key.startswith('scanqa ')]
    assert 300 <= len(sample) <= 500
    for key in sample:
        words = len(pairs[key][0].split())
        assert item['METEOR'][key] == item['ROUGE_L'][key] == 100.0, key
        for n in range(1, 5):
            if words >= n:
                assert item[f'BLEU-{n}'][key] == pytest.approx(100.0, abs=1e-6), (key, n)
            else:  # no n-grams: pycocoevalcap smooths each missing order to a factor 1e-6 (3 % at most here)
                assert item[f'BLEU-{n}'][key] < 5.0, (key, n)
        assert item['CIDEr'][key] > 0.0, key
    # An item's references disagree (mostly two answers): an exact first answer has cosine 1 with one of them
    # only, so CIDEr lands well above 100 on average but below its 1000 ceiling.
    assert 200.0 < sum(item['CIDEr'][key] for key in sample) / len(sample) < 1000.0


def test_sqa3d_references_as_predictions_score_every_question():
    files = [SQA3D_DIR / f'v1_balanced_{kind}_test_scannetv2.json' for kind in ('questions', 'sqa_annotations')]
    if not all(path.exists() for path in files):
        pytest.skip(f'SQA3D annotations not found in {SQA3D_DIR}')
    questions, annotations = (json.loads(path.read_text()) for path in files)
    question_of = {q['question_id']: q['question'] for q in questions['questions']}
    items = []
    for record in annotations['annotations']:
        references = [a['answer'] for a in record['answers']]
        items.append((references[0], references, question_of[record['question_id']]))
    scores = score_sqa3d(items)
    assert scores['count'] == len(items) == 3261
    assert scores['EM'] == scores['EM_refined'] == 100.0
    assert sum(group['count'] for group in scores['by_type'].values()) == len(items)
    assert all(group['count'] > 0 for group in scores['by_type'].values())
