"""Answer and caption metrics of the question-answering benchmarks (ScanQA, SQA3D), in percent.

The rules are those of GPT4Scene's own scorer (``evaluate/utils/helper.py`` and ``evaluate/utils/eval.py`` of
Qi-Zhangyang/GPT4Scene-and-VLN-R1), which takes its answer cleaning from LEO (embodied-generalist
``data/data_utils.py``) and its scoring from Chat-Scene (``utils/eval.py``), so that the numbers compare with the
published tables. Caption metrics are pycocoevalcap 1.2's (PTB tokenizer, BLEU, METEOR, ROUGE-L, CIDEr), as there;
its tokenizer and METEOR are Java programs.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import math
import re
import shutil
import threading
from collections.abc import Iterable

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

CAPTION_METRICS = ('BLEU-1', 'BLEU-2', 'BLEU-3', 'BLEU-4', 'METEOR', 'ROUGE_L', 'CIDEr')
"""The keys of :func:`caption_scores`."""
SQA3D_QUESTION_TYPES = ('what', 'is', 'how', 'can', 'which', 'other')
"""SQA3D's question types, read from the question's leading word (:func:`question_type`)."""

_KEPT_CHARACTERS = re.compile(r"[^a-zA-Z0-9,'\s\-:]+")
_TYPOS = {
    'letf': 'left',
    'let': 'left',
    'tehre': 'there',
    'rigth': 'right',
    'rght': 'right',
    'behine': 'behind',
    'tv': 'TV',
    'chai': 'chair',
    'wasing': 'washing',
    'waslked': 'walked',
    'oclock': "o'clock",
}
_NUMBER_WORDS = {
    '0': 'zero',
    'none': 'zero',
    **{
        str(n): word
        for n, word in enumerate(
            'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen '
            'seventeen eighteen nineteen twenty'.split(),
            start=1,
        )
    },
    '23': 'twenty-three',
}
_TYPO_WORDS = re.compile(r'\b(' + '|'.join(_TYPOS) + r')\b')
_SPLIT_OCLOCK = re.compile(r"\bo'[ ]+clock\b")
_NUMBER_TOKENS = re.compile(r'\b([0-9]+|none)\b')
_WORD_WITH_DIGIT = re.compile(r'\b([a-zA-Z]+)[0-9]\b')
_ARTICLES = tuple(re.compile(rf'\b{article}\b ([a-zA-Z]+)') for article in ('a', 'an', 'the'))


class MissingJavaError(RuntimeError):
    """The caption metrics need a Java runtime that is not installed."""


def clean_answer(text: str) -> str:
    """An answer normalised as LEO's ``clean_answer`` (used by Chat-Scene and GPT4Scene), step by step.

    Lower case; spaces trimmed and runs of them collapsed; every character but ASCII letters, digits, whitespace
    and ``,'-:`` dropped (so a curly apostrophe goes, and "don’t" becomes "dont", as there); the protocol's typo
    list (``letf``/``let`` -> left, ``tv`` -> TV, ...); the numbers 0-20 and 23 (and "none") as words; a trailing
    digit glued to a word dropped ("mat2" -> "mat"); "a", "an", "the" before a word dropped; "backwards" ->
    "backward". The protocol's ordering quirks are kept: spaces are trimmed before punctuation is dropped, so
    "table ." keeps a trailing space.
    """
    text = text.lower()
    text = re.sub(r' {2,}', ' ', re.sub(r'^ +| +$', '', text))  # '$' also before a final newline, as there
    text = _KEPT_CHARACTERS.sub('', text)
    text = _TYPO_WORDS.sub(lambda match: _TYPOS[match.group(1)], text)
    text = _SPLIT_OCLOCK.sub("o'clock", text)
    text = _NUMBER_TOKENS.sub(lambda match: _NUMBER_WORDS.get(match.group(1), match.group(1)), text)
    text = _WORD_WITH_DIGIT.sub(r'\1', text)
    for article in _ARTICLES:
        text = article.sub(r'\1', text)
    return re.sub(r'\bbackwards\b', 'backward', text)


def _clean_prediction(text: str) -> str:
    """GPT4Scene's ``calc_scanqa_score``/``calc_sqa3d_score`` drop one final period before cleaning a prediction
    (not a reference): "table ." then cleans to "table", not "table "."""
    if len(text) > 1 and text.endswith('.'):
        text = text[:-1]
    return clean_answer(text)


def answer_match(prediction: str, references: list[str]) -> tuple[bool, bool]:
    """(EM, EM_refined) of a raw prediction against raw reference answers, both cleaned (:func:`clean_answer`).

    GPT4Scene's ``answer_match``: EM when the cleaned prediction equals a cleaned reference; EM_refined also when,
    whitespace removed, either one contains the other (for some reference). An empty prediction matches nothing
    (there: an empty string; here also one of whitespace only, which the containment test would otherwise pass).
    """
    cleaned = _clean_prediction(prediction)
    cleaned_references = [clean_answer(reference) for reference in references]
    if not cleaned.strip():
        return False, False
    if cleaned in cleaned_references:
        return True, True
    squeezed = ''.join(cleaned.split())
    for reference in cleaned_references:
        squeezed_reference = ''.join(reference.split())
        if squeezed in squeezed_reference or squeezed_reference in squeezed:
            return False, True
    return False, False


def require_java() -> None:
    """Raise :class:`MissingJavaError` unless a ``java`` program is on PATH."""
    if shutil.which('java') is None:
        raise MissingJavaError(
            'the caption metrics (BLEU, METEOR, ROUGE_L, CIDEr) need Java: pycocoevalcap tokenizes captions with '
            "Stanford's PTB tokenizer and scores METEOR with meteor-1.5.jar, and no `java` was found on PATH. "
            'Install a Java runtime (Debian/Ubuntu: `sudo apt-get install default-jre-headless`) or put its bin '
            'folder on PATH.'
        )


def _one_line(text: str) -> str:
    """A caption on one line: the PTB tokenizer works line by line (``-preserveLines``) and pycocoevalcap pairs
    its output lines with the captions by position, so a carriage return or U+2028 inside a caption would shift
    every later caption onto the wrong item. ``|||`` separates fields in METEOR's input."""
    return ' '.join(text.splitlines()).replace('|||', ' ')


def _tokenize(pairs: dict[str, tuple[str, list[str]]]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(candidates, references) as pycocoevalcap's scorers take them, in ``pairs`` order, from one tokenizer run."""
    captions: dict[tuple[str, str], list[dict[str, str]]] = {}
    for key, (prediction, references) in pairs.items():
        captions[('candidate', key)] = [{'caption': _one_line(prediction)}]
        captions[('reference', key)] = [{'caption': _one_line(reference)} for reference in references]
    tokenized = PTBTokenizer().tokenize(captions)
    if any(len(tokenized.get(key, ())) != len(value) for key, value in captions.items()):
        raise RuntimeError('the PTB tokenizer returned a different number of lines than it was given captions')
    return (
        {key: tokenized[('candidate', key)] for key in pairs},
        {key: tokenized[('reference', key)] for key in pairs},
    )


def _meteor_scores(
    meteor: Meteor, references: dict[str, list[str]], candidates: dict[str, list[str]]
) -> tuple[float, list[float]]:
    """METEOR's (corpus, per item) from its running Java process, with the process's own error when it fails."""
    try:
        score, scores = meteor.compute_score(references, candidates)
    except (ValueError, OSError) as error:
        meteor.meteor_p.kill()
        message = meteor.meteor_p.stderr.read().decode(errors='replace').strip()
        raise RuntimeError(f'METEOR (java -jar meteor-1.5.jar) failed: {message or error!r}') from None
    return float(score), [float(s) for s in scores]


def _stop_meteor(meteor: Meteor) -> None:
    """End METEOR's Java process now rather than when the garbage collector runs pycocoevalcap's ``__del__``
    (which then finds it ended and does nothing). A failed ``compute_score`` leaves its lock taken, and that
    ``__del__`` would then wait on it forever: the lock is released here."""
    process = meteor.meteor_p
    for stream in (process.stdin, process.stdout, process.stderr):
        stream.close()
    process.kill()
    process.wait()
    if meteor.lock.locked():
        meteor.lock.release()


_METEOR: list[Meteor] = []
"""The process's METEOR (its Java start loads a 60 MB paraphrase table: seconds), started on first use, ended at
exit or when it fails."""
_METEOR_LOCK = threading.Lock()


def _running_meteor() -> Meteor:
    if _METEOR and _METEOR[0].meteor_p.poll() is None:
        return _METEOR[0]
    _METEOR[:] = [Meteor()]
    atexit.register(_stop_meteor, _METEOR[0])
    return _METEOR[0]


def caption_scores(pairs: dict[str, tuple[str, list[str]]]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Corpus and per-item BLEU-1..4, METEOR, ROUGE_L and CIDEr (:data:`CAPTION_METRICS`) in percent.

    ``pairs``: item key -> (predicted caption, reference captions), both as given (no :func:`clean_answer`).
    Captions go through pycocoevalcap's PTB tokenizer, then its scorers, as GPT4Scene's ``calculate_scores.py``;
    the per-item lists follow the order of ``pairs``. Corpus BLEU pools n-gram counts over all items (not the mean
    of the per-item values, which smooth sentences shorter than n words to nearly 0); the corpus METEOR is the
    jar's aggregate; ROUGE_L and CIDEr are per-item means. CIDEr's document frequencies come from the references
    of ``pairs`` itself, so a handful of items scores differently from the same items within a whole benchmark,
    and an n-gram found in every item's references weighs nothing. Its maximum is not 100: pycocoevalcap's CIDEr
    is 10x the mean cosine over n = 1..4, so an exact caption whose references all agree scores 1000 with four
    words or more, 250 with one (one of the four n-gram orders has any n-grams). Raises :class:`MissingJavaError`
    before starting anything when Java is absent. METEOR's Java process is started once and kept.
    """
    if not pairs:
        raise ValueError('caption_scores needs at least one (prediction, references) pair')
    for key, (_, item_references) in pairs.items():
        if not item_references:
            raise ValueError(f'caption_scores: item {key!r} has no reference captions')
    require_java()
    with _METEOR_LOCK:
        meteor = _running_meteor()  # a new Java process loads its tables while the others score
        candidates, references = _tokenize(pairs)
        with contextlib.redirect_stdout(io.StringIO()):  # pycocoevalcap's BLEU prints its n-gram statistics
            bleu, bleu_items = Bleu(4).compute_score(references, candidates)
        rouge, rouge_items = Rouge().compute_score(references, candidates)
        cider, cider_items = Cider().compute_score(references, candidates)
        try:
            meteor_score, meteor_items = _meteor_scores(meteor, references, candidates)
        except RuntimeError:
            _stop_meteor(meteor)
            raise
    corpus = [*bleu, meteor_score, rouge, cider]
    per_item = [*bleu_items, meteor_items, rouge_items, cider_items]
    return (
        {name: 100.0 * float(value) for name, value in zip(CAPTION_METRICS, corpus)},
        {name: [100.0 * float(v) for v in values] for name, values in zip(CAPTION_METRICS, per_item)},
    )


def _percent_true(flags: Iterable[bool]) -> float:
    """Percentage of true flags; NaN for none."""
    values = list(flags)
    return 100.0 * sum(values) / len(values) if values else math.nan


def score_scanqa(items: list[tuple[str, list[str]]]) -> dict[str, float]:
    """ScanQA scores of (prediction, reference answers) items: ``EM``, ``EM_refined`` and :data:`CAPTION_METRICS`.

    EM as :func:`answer_match`, both sides cleaned, as Chat-Scene and LEO (GPT4Scene's released
    ``calc_scanqa_score`` replaces its cleaned references with the raw ones before matching, so that there a
    prediction "2", cleaned to "two", misses a reference "2"). The caption metrics compare the cleaned prediction
    with the raw references, as GPT4Scene's ``calc_scanqa_score`` (Chat-Scene and LEO use cleaned ones there too).
    """
    if not items:
        raise ValueError('score_scanqa needs at least one item')
    matches = [answer_match(prediction, references) for prediction, references in items]
    corpus, _ = caption_scores(
        {str(k): (_clean_prediction(prediction), list(references)) for k, (prediction, references) in enumerate(items)}
    )
    return {
        'EM': _percent_true(em for em, _ in matches),
        'EM_refined': _percent_true(refined for _, refined in matches),
        **corpus,
    }


def question_type(question: str) -> str:
    """SQA3D's question type (:data:`SQA3D_QUESTION_TYPES`): the first of "what", "is", "how", "can", "which" that
    the question (leading spaces ignored, any case) starts with, else "other".

    A prefix test, as SQA3D's and LEO's ``get_sqa_question_type``: "Isn't" counts as "is".
    """
    start = question.lstrip().lower()
    return next((kind for kind in SQA3D_QUESTION_TYPES[:-1] if start.startswith(kind)), 'other')


def score_sqa3d(items: list[tuple[str, list[str], str]]) -> dict:
    """SQA3D scores of (prediction, reference answers, question) items.

    ``EM``, ``EM_refined`` (:func:`answer_match`, both sides cleaned, as LEO's ``SQA3DEvaluator``), ``count``, and
    ``by_type``: {type: {``EM``, ``EM_refined``, ``count``}} for every type of :data:`SQA3D_QUESTION_TYPES` (NaN
    scores for a type without questions).
    """
    if not items:
        raise ValueError('score_sqa3d needs at least one item')
    matched = [(question_type(question), *answer_match(prediction, refs)) for prediction, refs, question in items]
    by_type: dict[str, dict[str, float]] = {}
    for kind in SQA3D_QUESTION_TYPES:
        of_kind = [(em, refined) for item_kind, em, refined in matched if item_kind == kind]
        by_type[kind] = {
            'EM': _percent_true(em for em, _ in of_kind),
            'EM_refined': _percent_true(refined for _, refined in of_kind),
            'count': len(of_kind),
        }
    return {
        'EM': _percent_true(em for _, em, _ in matched),
        'EM_refined': _percent_true(refined for _, _, refined in matched),
        'count': len(matched),
        'by_type': by_type,
    }
