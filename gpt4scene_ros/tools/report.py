"""A self-contained HTML report of one scene and the questions asked about it (the demo's output).

Everything is in one file: images are embedded as base64 PNG/JPEG, there is no
script and no stylesheet or font from the network, so the report opens
offline in any browser. The page is built from core types only
(:class:`~gpt4scene_ros.objects.scene_objects.ObjectsSnapshot`, :class:`ReportQuestion`);
the demo fills them from ROS messages.
"""

from __future__ import annotations

import base64
import html
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from gpt4scene_ros.objects.markers import marker_color
from gpt4scene_ros.objects.scene_objects import ObjectsSnapshot
from gpt4scene_ros.objects.tags import object_tag


@dataclass(frozen=True)
class ReportQuestion:
    """One question and its answer, as the query service gave it."""

    task: str
    question: str = ''
    situation: str = ''
    object_ids_asked: tuple = ()
    success: bool = False
    answer: str = ''
    message: str = ''
    instances: tuple = ()
    """Core instances (their boxes) of the objects the answer names."""
    round_trip_ms: float = 0.0
    prepare_ms: float = 0.0
    model_ms: float = 0.0


@dataclass(frozen=True)
class ReportContext:
    """What the report says about the run besides the scene: where the data came from, the model, timings."""

    source: str
    backend: str
    model: str = ''
    model_is_random: bool = False
    timings_s: dict = field(default_factory=dict)
    """Stage name -> seconds, shown in this order."""
    counts: dict = field(default_factory=dict)
    """Name -> number (frames received, integrated, ...)."""


class ReportError(RuntimeError):
    """The report cannot be written where it was asked for."""


def check_writable_dir(folder) -> Path:
    """Create ``folder`` if needed and check that a file can be written in it; ReportError otherwise."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f'.write-test-{os.getpid()}'
        probe.write_bytes(b'')
        probe.unlink()
    except OSError as error:
        raise ReportError(f'cannot write the report into {folder}: {error.strerror or error}') from None
    return folder


def _data_uri(image_rgb: np.ndarray, image_format: str = 'png') -> str:
    ok, encoded = cv2.imencode(
        '.' + image_format,
        cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, 88] if image_format == 'jpg' else [],
    )
    if not ok:
        raise ValueError(f'could not encode a {image_rgb.shape} image as {image_format}')
    mime = 'image/png' if image_format == 'png' else 'image/jpeg'
    return f'data:{mime};base64,' + base64.b64encode(encoded.tobytes()).decode('ascii')


def draw_boxes_on_bev(snapshot: ObjectsSnapshot, instances, image: np.ndarray | None = None) -> np.ndarray:
    """The marked BEV (or ``image``, of the BEV's size) with the footprints of ``instances`` outlined,
    each in its marker colour (the marker inside says which object it is)."""
    canvas = (snapshot.bev_marked() if image is None else image).copy()
    bev = snapshot.bev
    scale = max(canvas.shape[:2]) / 512.0
    thickness = max(2, round(3 * scale))
    for instance in instances:
        footprint = instance.box.corners()[:4, :2]
        rows_cols = bev.map_to_pixel(footprint)
        polygon = np.round(rows_cols[:, ::-1]).astype(np.int32).reshape(-1, 1, 2)
        color = tuple(int(c) for c in marker_color(instance.id))
        cv2.polylines(canvas, [polygon], True, (0, 0, 0), thickness + 2, cv2.LINE_AA)
        cv2.polylines(canvas, [polygon], True, color, thickness, cv2.LINE_AA)
    return canvas


def overview_image(snapshot: ObjectsSnapshot, height_px: int = 420) -> np.ndarray:
    """The package in one picture: the marked BEV next to the marked keyframe that shows the most objects."""
    panels = [snapshot.bev_marked()]
    if snapshot.keyframes:
        best = max(snapshot.keyframes, key=lambda k: len(k.markers))
        panels.append(snapshot.marked(best))
    resized = [
        cv2.resize(p, (max(1, round(p.shape[1] * height_px / p.shape[0])), height_px), interpolation=cv2.INTER_AREA)
        for p in panels
    ]
    gap = np.full((height_px, 8, 3), 255, np.uint8)
    return np.concatenate([x for panel in resized for x in (panel, gap)][:-1], axis=1)


def write_overview(path, snapshot: ObjectsSnapshot) -> Path:
    """:func:`overview_image` as a JPEG file (ReportError when it cannot be written)."""
    path = Path(path)
    check_writable_dir(path.parent)
    if not cv2.imwrite(
        str(path), cv2.cvtColor(overview_image(snapshot), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
    ):
        raise ReportError(f'cannot write {path}')
    return path


def _object_rows(instances) -> str:
    rows = []
    # Some labelled: a detector or labelled masks ran and did not name the rest; none: nothing names objects.
    unnamed = '(unlabelled)' if any(i.label for i in instances) else '(no detector)'
    for instance in sorted(instances, key=lambda i: i.id):
        box = instance.box
        swatch = '#' + ''.join(f'{int(c):02x}' for c in marker_color(instance.id))
        label = html.escape(instance.label) if instance.label else f'<span class="muted">{unnamed}</span>'
        rows.append(
            f'<tr data-object-id="{instance.id}"><td><span class="swatch" style="background:{swatch}"></span>'
            f'{html.escape(instance.tag)}</td><td>{label}</td>'
            f'<td>{box.center[0]:.2f}, {box.center[1]:.2f}, {box.center[2]:.2f}</td>'
            f'<td>{box.size[0]:.2f} &times; {box.size[1]:.2f} &times; {box.size[2]:.2f}</td>'
            f'<td>{math.degrees(box.yaw):.0f}&deg;</td><td>{instance.num_points}</td>'
            f'<td>{len(instance.keyframe_ids)}</td></tr>'
        )
    return '\n'.join(rows)


def _question_block(index: int, item: ReportQuestion, snapshot: ObjectsSnapshot) -> str:
    asked = html.escape(item.question) if item.question else '<span class="muted">(no question: task alone)</span>'
    lines = [
        f'<section class="question" data-task="{html.escape(item.task)}" data-success="{str(item.success).lower()}">',
        f'<h3>{index}. <code>{html.escape(item.task)}</code> &mdash; {asked}</h3>',
    ]
    if item.situation:
        lines.append(f'<p><b>Situation:</b> {html.escape(item.situation)}</p>')
    if item.object_ids_asked:
        lines.append(
            '<p><b>Objects asked about:</b> '
            + ', '.join(html.escape(object_tag(i)) for i in item.object_ids_asked)
            + '</p>'
        )
    if item.success:
        lines.append(f'<p class="answer"><b>Answer:</b> {html.escape(item.answer) or "<i>(empty)</i>"}</p>')
    else:
        lines.append(f'<p class="error"><b>Refused:</b> {html.escape(item.message)}</p>')
    named = ', '.join(
        f'{html.escape(i.tag)} at ({i.box.center[0]:.2f}, {i.box.center[1]:.2f}, {i.box.center[2]:.2f}) m'
        for i in item.instances
    )
    lines.append(f'<p><b>Objects named:</b> {named or "none"}</p>')
    lines.append(
        f'<p class="muted">round trip {item.round_trip_ms:.0f} ms (prepare {item.prepare_ms:.0f} ms, '
        f'model {item.model_ms:.0f} ms)</p>'
    )
    if item.instances and len(item.instances) <= 50:
        image = draw_boxes_on_bev(snapshot, item.instances)
        lines.append(
            f'<img class="bev-answer" alt="BEV with the boxes of the objects named by answer {index}" '
            f'src="{_data_uri(image)}">'
        )
    lines.append('</section>')
    return '\n'.join(lines)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 72em; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } .muted { color: #777; } code { background: #f3f3f3; padding: 0 0.2em; }
.note { border-left: 4px solid #d9822b; background: #fff6ec; padding: 0.6em 1em; }
.row { display: flex; flex-wrap: wrap; gap: 1em; } figure { margin: 0; } figcaption { color: #555; }
.row img { max-width: 34em; width: 100%; border: 1px solid #ccc; }
.keyframes { display: grid; grid-template-columns: repeat(auto-fill, minmax(16em, 1fr)); gap: 0.6em; }
.keyframes img { width: 100%; border: 1px solid #ccc; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; } .swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.4em;
border: 1px solid #333; vertical-align: middle; }
.question { border-top: 1px solid #ddd; margin-top: 1em; } .question img { max-width: 30em; width: 100%; }
.answer { white-space: pre-wrap; } .error { color: #a00; }
"""


def render_report(snapshot: ObjectsSnapshot, questions, context: ReportContext) -> str:
    """The HTML page (a string) of ``snapshot`` and the answered ``questions``."""
    bev_uri = _data_uri(snapshot.bev.image)
    marked_uri = _data_uri(snapshot.bev_marked())
    keyframes = []
    first_stamp_s = snapshot.keyframes[0].stamp_s if snapshot.keyframes else 0.0
    for position, keyframe in enumerate(snapshot.keyframes):
        marked = snapshot.marked(keyframe)
        ids = html.escape(' '.join(object_tag(m.id) for m in keyframe.markers)) or 'no objects'
        keyframes.append(
            f'<figure><img class="keyframe" alt="keyframe {position}" src="{_data_uri(marked, "jpg")}">'
            f'<figcaption>#{position} (rank {keyframe.rank}): frame {keyframe.index}, '
            f't = +{keyframe.stamp_s - first_stamp_s:.1f} s; {ids}</figcaption></figure>'
        )
    timings = ''.join(
        f'<tr><td>{html.escape(name)}</td><td>{seconds:.1f} s</td></tr>' for name, seconds in context.timings_s.items()
    )
    counts = ''.join(f'<tr><td>{html.escape(name)}</td><td>{value}</td></tr>' for name, value in context.counts.items())
    if context.model_is_random:
        model_note = (
            '<p class="note"><b>The answers below are random text.</b> This run used a tiny, randomly '
            'initialised Qwen2-VL built on this machine (nothing is downloaded), so it exercises the whole path '
            '(prompt, images, markers, the model, parsing the object IDs, the boxes) but says nothing useful. '
            'To run a real model: <code>./scripts/demo --model Qwen/Qwen2-VL-7B-Instruct</code> (a local '
            'transformers model, a GPU recommended), <code>./scripts/demo --params-file config/vlm/jetson.yaml'
            '</code>, or a vLLM server: <code>./scripts/demo --params-file config/vlm/vllm.yaml</code> (see the '
            'README, "Running a real model").</p>'
        )
    else:
        model_note = f'<p>Model: <code>{html.escape(context.model or context.backend)}</code>.</p>'
    answered = sum(1 for q in questions if q.success)
    question_blocks = '\n'.join(_question_block(i + 1, q, snapshot) for i, q in enumerate(questions))
    generated = time.strftime('%Y-%m-%d %H:%M:%S')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>gpt4scene_ros demo report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body>
<h1>gpt4scene_ros: what the robot saw, and what it answered</h1>
<p class="muted">Source: <code>{html.escape(context.source)}</code>;
backend <code>{html.escape(context.backend)}</code>;
map of {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(snapshot.stamp_s))} UTC (stamp {snapshot.stamp_s:.2f} s,
version {snapshot.map_version}); written {generated}.</p>
<p id="summary">{len(snapshot.instances)} objects in the map, {len(snapshot.keyframes)} keyframes,
{answered} of {len(questions)} questions answered.</p>
{model_note}
<h2>Bird's-eye view</h2>
<p>The TSDF map seen from above (north up, {snapshot.bev.metres_per_pixel * 100:.1f} cm per pixel, the ceiling cut
away above {snapshot.bev.max_height_m:.1f} m), then the same view with the object-ID markers the model sees
(GPT4Scene): the same number marks the same object here and on every keyframe.</p>
<div class="row"><figure><img id="bev" alt="bird's-eye view" src="{bev_uri}"><figcaption>BEV</figcaption></figure>
<figure><img id="bev-marked" alt="marked bird's-eye view" src="{marked_uri}"><figcaption>Marked BEV</figcaption>
</figure></div>
<h2>Keyframes (marked)</h2>
<div class="keyframes">{''.join(keyframes) or '<p>No keyframes.</p>'}</div>
<h2>Objects</h2>
<table id="objects"><thead><tr><th>ID</th><th>label</th><th>centre x, y, z (m)</th><th>size (m)</th><th>yaw</th>
<th>voxels</th><th>keyframes</th></tr></thead>
<tbody>
{_object_rows(snapshot.instances)}
</tbody></table>
<h2>Questions</h2>
{question_blocks or '<p>No questions were asked.</p>'}
<h2>Run</h2>
<div class="row"><table id="timings"><thead><tr><th>stage</th><th>time</th></tr></thead><tbody>{timings}</tbody>
</table><table id="counts"><thead><tr><th>count</th><th>value</th></tr></thead><tbody>{counts}</tbody></table></div>
</body></html>
"""


def write_report(path, snapshot: ObjectsSnapshot, questions, context: ReportContext) -> Path:
    """Write the report to ``path`` (its folder created); ReportError when it cannot be written."""
    path = Path(path)
    check_writable_dir(path.parent)
    text = render_report(snapshot, questions, context)
    temporary = path.with_name(path.name + '.part')
    try:
        temporary.write_text(text, encoding='utf-8')
        temporary.replace(path)
    except OSError as error:
        raise ReportError(f'cannot write {path}: {error.strerror or error}') from None
    return path
