"""``report.html`` of a benchmark run: the scores, bars per category, and the worst examples with the images the
model saw (one self-contained page; the images are linked from the run folder)."""

from __future__ import annotations

import html
import math
from pathlib import Path

from gpt4scene_ros.eval.answers import answer_match
from gpt4scene_ros.eval.benchmarks import Question
from gpt4scene_ros.eval.grounding import prediction_iou
from gpt4scene_ros.eval.scoring import GroundTruth, prediction_boxes

WORST_EXAMPLES = 8

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
.bar { background: #4a7fb0; height: 0.9em; display: inline-block; vertical-align: middle; }
.example { border-top: 1px solid #ddd; padding: 0.8em 0; }
.example img { height: 150px; margin: 2px; border: 1px solid #ccc; }
.wrong { color: #a01c1c; } .muted { color: #777; }
"""


def _flat(scores: dict, prefix: str = '') -> list[tuple[str, float]]:
    rows = []
    for key, value in scores.items():
        if isinstance(value, dict):
            rows.extend(_flat(value, f'{prefix}{key} / '))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append((f'{prefix}{key}', float(value)))
    return rows


def _categories(scores: dict) -> dict[str, dict]:
    """The per-category blocks of a score record (by_type, by_category, unique/multiple, eval types)."""
    found = dict(scores.get('by_category', {}))
    inner = scores.get('scores', {})
    found.update(inner.get('by_type', {}))
    for key, value in inner.items():
        if isinstance(value, dict) and key != 'by_type':
            found[key] = value
    return found


def _quality(benchmark: str, question: Question, prediction: dict, truth: GroundTruth | None) -> tuple[float, str]:
    """(how good, in 0..1, what to show) of one prediction, to find the worst."""
    if benchmark in ('scanrefer', 'multi3drefer', 'scan2cap') and truth is not None:
        targets = [truth.boxes.get((question.scene_id, i)) for i in question.object_ids]
        boxes = prediction_boxes(prediction)
        ious = [max((prediction_iou(b, t) for b in boxes), default=0.0) for t in targets if t is not None]
        value = min(ious) if ious else (1.0 if not boxes else 0.0)
        return value, f'IoU {value:.2f}'
    exact, refined = answer_match(str(prediction.get('answer', '')), list(question.answers))
    return (1.0 if exact else 0.5 if refined else 0.0), 'right' if exact else 'partly' if refined else 'wrong'


def _reference(question: Question, truth: GroundTruth | None) -> str:
    """The answers, or the benchmark objects to ground (id and label)."""
    if question.answers:
        return ' | '.join(question.answers[:3])
    labels = truth.labels if truth is not None else {}
    named = [f'object {i} ({labels.get((question.scene_id, i), "?")})' for i in question.object_ids]
    return ', '.join(named) or 'no object (a zero-target query)'


def write_report(
    path: Path,
    benchmark: str,
    questions: list[Question],
    predictions: list[dict],
    scores: dict,
    truth: GroundTruth | None = None,
) -> None:
    by_id = {str(p['question_id']): p for p in predictions}
    parts = [
        f'<!doctype html><html><head><meta charset="utf-8"><title>gpt4scene-eval {html.escape(benchmark)}</title>',
        f'<style>{_STYLE}</style></head><body>',
        f'<h1>{html.escape(benchmark)}</h1>',
        f'<p>{scores.get("questions", 0)} questions, {scores.get("predicted", 0)} answered, '
        f'{scores.get("missing", 0)} without a prediction (scored as wrong), '
        f'{len(scores.get("unknown_question_ids", []))} predictions for unknown questions (not scored).</p>',
        '<h2>Scores</h2><table><tr><th>metric</th><th>%</th></tr>',
    ]
    top = {k: v for k, v in scores.get('scores', {}).items() if not isinstance(v, dict) and k != 'count'}
    for name, value in _flat(top):
        parts.append(f'<tr><td>{html.escape(name)}</td><td>{value:.2f}</td></tr>')
    parts.append('</table>')
    categories = _categories(scores)
    if categories:
        parts.append('<h2>By category</h2><table><tr><th>category</th><th>metric</th><th>%</th><th></th></tr>')
        for category, values in categories.items():
            for name, value in _flat(values):
                if name == 'count' or not math.isfinite(value):
                    continue
                width = max(0.0, min(100.0, value)) * 2
                parts.append(
                    f'<tr><td>{html.escape(category)}</td><td>{html.escape(name)}</td><td>{value:.1f}</td>'
                    f'<td style="text-align:left"><span class="bar" style="width:{width:.0f}px"></span></td></tr>'
                )
        parts.append('</table>')
    ranked = sorted(
        (
            (*_quality(benchmark, q, by_id.get(q.question_id, {}), truth), q)
            for q in questions
            if q.question_id in by_id
        ),
        key=lambda item: item[0],
    )
    parts.append(f'<h2>Worst {min(WORST_EXAMPLES, len(ranked))} examples</h2>')
    for _, shown, question in ranked[:WORST_EXAMPLES]:
        prediction = by_id[question.question_id]
        images = ''.join(
            f'<img src="{html.escape(name)}" alt="image {k}">' for k, name in enumerate(prediction.get('images', []))
        )
        parts.append(
            '<div class="example">'
            f'<div class="muted">{html.escape(question.question_id)} · {html.escape(question.scene_id)}</div>'
            f'<div><b>Q:</b> {html.escape(question.situation + " " if question.situation else "")}'
            f'{html.escape(question.question or "(caption of the object)")}</div>'
            f'<div><b>Reference:</b> {html.escape(_reference(question, truth))}</div>'
            f'<div class="wrong"><b>Prediction:</b> {html.escape(str(prediction.get("answer", "")) or "(none)")} '
            f'({html.escape(shown)}){html.escape(" · " + prediction["error"] if prediction.get("error") else "")}'
            f'</div><div>{images}</div></div>'
        )
    parts.append('</body></html>')
    path.write_text('\n'.join(parts))
