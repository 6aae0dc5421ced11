"""The demo's HTML report: self-contained, every image decodes, the object table has the map's rows."""

from __future__ import annotations

import base64
import os
import re
import stat

import cv2
import numpy as np
import pytest
from scene_fixtures import make_snapshot

from gpt4scene_ros.objects.markers import marker_color
from gpt4scene_ros.tools.report import (
    ReportContext,
    ReportError,
    ReportQuestion,
    check_writable_dir,
    draw_boxes_on_bev,
    overview_image,
    render_report,
    write_overview,
    write_report,
)


def _images(page: str) -> list:
    found = re.findall(r'src="data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)"', page)
    return [cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR) for _, data in found]


def _questions(snapshot):
    table = snapshot.instance(7)
    return [
        ReportQuestion('objects', success=True, answer='3 objects', instances=snapshot.instances),
        ReportQuestion(
            'qa',
            'Where is <b>the table</b>?',
            'I sit on the sofa.',
            success=True,
            answer='Next to <OBJ007>.',
            instances=(table,),
            round_trip_ms=321.0,
        ),
        ReportQuestion('caption', object_ids_asked=(99,), success=False, message='unknown object ids [99]'),
    ]


def test_the_report_embeds_every_image_and_lists_every_object():
    snapshot = make_snapshot(num_keyframes=4)
    page = render_report(
        snapshot,
        _questions(snapshot),
        ReportContext(
            'scene', 'transformers', 'tiny', model_is_random=True, timings_s={'play': 12.5}, counts={'frames': 40}
        ),
    )
    assert 'http://' not in page and 'https://' not in page and '<script' not in page
    images = _images(page)
    # BEV, marked BEV, 4 keyframes, and one BEV per question that named objects.
    assert len(images) == 2 + 4 + 2 and all(image is not None for image in images)
    assert images[0].shape[:2] == snapshot.bev.image.shape[:2]
    rows = re.findall(r'<tr data-object-id="(\d+)">', page)
    assert sorted(int(r) for r in rows) == sorted(i.id for i in snapshot.instances)
    assert '&lt;OBJ007&gt;' in page and '<OBJ007>' not in page, 'tags are escaped, not read as HTML elements'
    assert 'Where is &lt;b&gt;the table&lt;/b&gt;?' in page
    assert 'random text' in page and 'config/vlm/vllm.yaml' in page
    assert 'unknown object ids [99]' in page and 'data-success="false"' in page
    assert '12.5 s' in page and '321 ms' in page


def test_a_real_model_gets_no_random_text_warning():
    snapshot = make_snapshot(num_keyframes=1)
    page = render_report(snapshot, [], ReportContext('bag.mcap', 'openai', 'Qwen2-VL-7B-Instruct'))
    assert 'random text' not in page and 'Qwen2-VL-7B-Instruct' in page and 'No questions were asked' in page


def test_named_boxes_are_outlined_in_their_marker_colours_on_the_bev():
    snapshot = make_snapshot(num_keyframes=1)
    blank = np.full_like(snapshot.bev.image, 255)
    table = snapshot.instance(7)
    drawn = draw_boxes_on_bev(snapshot, [table], blank)
    changed = np.any(drawn != 255, axis=2)
    rows, cols = np.nonzero(changed)
    corners = snapshot.bev.map_to_pixel(table.box.corners()[:4, :2])
    assert rows.min() >= corners[:, 0].min() - 6 and rows.max() <= corners[:, 0].max() + 6
    assert cols.min() >= corners[:, 1].min() - 6 and cols.max() <= corners[:, 1].max() + 6
    colour = np.array(marker_color(7))
    assert np.any(np.all(drawn == colour, axis=2)), 'the outline has the marker colour of the object'
    # The centre of the footprint stays untouched: an outline, not a filled box.
    centre = np.round(snapshot.bev.map_to_pixel(table.box.center[:2])[0]).astype(int)
    assert not changed[centre[0], centre[1]]


def test_write_report_is_atomic_and_an_unwritable_folder_is_a_clear_error(tmp_path):
    snapshot = make_snapshot(num_keyframes=2)
    path = write_report(tmp_path / 'out' / 'report.html', snapshot, [], ReportContext('scene', 'none'))
    assert path.read_text().startswith('<!DOCTYPE html>') and not list(path.parent.glob('*.part'))
    a_file = tmp_path / 'file'
    a_file.write_text('x')
    with pytest.raises(ReportError, match='cannot write the report into'):
        write_report(a_file / 'sub' / 'report.html', snapshot, [], ReportContext('scene', 'none'))


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders')
def test_a_read_only_folder_is_a_clear_error(tmp_path):
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(ReportError, match='cannot write the report into'):
            check_writable_dir(locked)
    finally:
        locked.chmod(stat.S_IRWXU)


def test_the_overview_puts_the_marked_bev_next_to_the_busiest_keyframe(tmp_path):
    snapshot = make_snapshot(num_keyframes=3)
    image = overview_image(snapshot, height_px=200)
    bev_width = round(snapshot.bev.width_px * 200 / snapshot.bev.height_px)
    assert image.shape == (200, bev_width + 8 + round(640 * 200 / 480), 3)
    np.testing.assert_array_equal(image[:, bev_width : bev_width + 8], 255)
    path = write_overview(tmp_path / 'overview.jpg', snapshot)
    assert cv2.imread(str(path)).shape == overview_image(snapshot).shape  # 420 px high by default
