"""The README's main command, end to end: a scene played through the graph, every task asked, an HTML report
that a real browser renders, and clean failures (bad input, an unwritable output folder, Ctrl-C)."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO_ROOT

from gpt4scene_ros.io.bags import BagTopics, write_bag
from gpt4scene_ros.io.open import open_sequence
from gpt4scene_ros.sim.scene import SyntheticSceneConfig
from gpt4scene_ros.sim.writer import write_sequence

REALSENSE = BagTopics(
    color='/camera/camera/color/image_raw',
    depth='/camera/camera/aligned_depth_to_color/image_raw',
    camera_info='/camera/camera/color/camera_info',
    odometry='/odom',
)

SCREENSHOTS = REPO_ROOT / 'out' / 'test_screenshots'
BROWSER = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
CHECK_SCRIPT = """<script>
window.addEventListener('load', () => {
  const images = [...document.images];
  const result = {images: images.length,
                  broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
                  rows: document.querySelectorAll('#objects tbody tr').length,
                  questions: document.querySelectorAll('section.question').length,
                  summary: document.getElementById('summary').textContent};
  const out = document.createElement('pre');
  out.id = 'browser-check';
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>"""


def demo(*args, env=None, **kwargs):
    return subprocess.run(
        [sys.executable, '-P', '-m', 'gpt4scene_ros.tools.demo', *args],
        capture_output=True,
        text=True,
        env=env,
        **kwargs,
    )


def browser_check(report: Path, tmp_path: Path) -> dict:
    """Open a copy of the report (with a check script added) in headless Chromium; what the page saw."""
    probe = tmp_path / 'probe.html'
    probe.write_text(report.read_text().replace('</body>', CHECK_SCRIPT + '</body>'))
    result = subprocess.run(
        [
            BROWSER,
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--virtual-time-budget=20000',
            '--dump-dom',
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', result.stdout)
    assert found, f'the check script did not run: {result.stderr[-2000:]}'
    return json.loads(found.group(1).replace('&quot;', '"').replace('&amp;', '&'))


def screenshot(report: Path, path: Path) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            BROWSER,
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--hide-scrollbars',
            '--window-size=1280,3000',
            f'--screenshot={path}',
            report.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        cwd=path.parent,
    )
    image = cv2.imread(str(path))
    assert image is not None, f'no screenshot at {path}'
    return image


def marked_processes(marker: str) -> list:
    """PIDs of the processes that inherited the environment variable GPT4SCENE_TEST_RUN=marker."""
    found = []
    needle = f'GPT4SCENE_TEST_RUN={marker}'.encode()
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / 'environ').read_bytes().split(b'\0'):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture
def run_marker():
    """A marker for the processes a test starts (``GPT4SCENE_TEST_RUN``): whatever the test's outcome, none of them
    is left running after it (a failed assertion would otherwise leave the demo's nodes behind)."""
    marker = uuid.uuid4().hex
    yield marker
    for pid in marked_processes(marker):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def small_scene(tmp_path) -> Path:
    folder = tmp_path / 'scene'
    write_sequence(SyntheticSceneConfig(seed=3, num_frames=60).with_resolution(320, 240), folder)
    return folder


@pytest.fixture
def small_bag(small_scene, tmp_path) -> Path:
    """The scene recorded as a robot would: an MCAP bag with a RealSense driver's topic names."""
    write_bag(open_sequence(small_scene), tmp_path / 'bag', topics=REALSENSE)
    return tmp_path / 'bag'


@pytest.mark.skipif(
    BROWSER is None and not os.environ.get('GPT4SCENE_REQUIRE_BROWSER'),
    reason='no chromium here (scripts/test installs it)',
)
@pytest.mark.realtime
def test_the_demo_on_a_bag_asks_every_task_and_writes_a_report_a_browser_renders(small_bag, tmp_path, run_marker):
    assert BROWSER, 'scripts/test installs chromium: the report must be checked in a real browser'
    out = tmp_path / 'out'
    marker = run_marker
    # More keyframe candidates per update than the default 4: the objects settle sooner after the last frame.
    roles = ('color', 'depth', 'camera_info', 'odometry')
    topics = [f'player.{role}_topic={getattr(REALSENSE, role)}' for role in roles]
    # The README's command itself (scripts/demo: set-up check, then the demo).
    result = subprocess.run(
        [
            str(REPO_ROOT / 'scripts' / 'demo'),
            str(small_bag),
            '--out',
            str(out),
            '-p',
            'mapping_node.candidates_per_update=16',
            *[arg for topic in topics for arg in ('-p', topic)],
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, GPT4SCENE_TEST_RUN=marker),
        timeout=400,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not marked_processes(marker), 'the graph is stopped when the demo ends'
    report = out / 'report.html'
    assert f'report: {report}' in result.stdout
    summary = re.search(r'(\d+) of 60 frames integrated, (\d+) objects, 6 of 6 questions answered', result.stdout)
    assert summary, result.stdout
    objects = int(summary.group(2))
    assert objects >= 3, result.stdout
    for task in ('objects', 'qa', 'ground', 'multi_ground', 'caption'):
        assert re.search(rf'^demo: {task} ', result.stdout, re.M), f'{task} asked: {result.stdout}'

    seen = browser_check(report, tmp_path)
    assert seen['broken'] == [] and seen['images'] >= 2 + 1 + 1, seen  # BEVs, keyframes, answer boxes
    assert seen['rows'] == objects and seen['summary'].startswith(f'{objects} objects in the map'), seen
    assert seen['questions'] == 6, seen
    shot = screenshot(report, SCREENSHOTS / 'demo_report.png')
    assert shot.shape[1] == 1280 and float(shot.std()) > 20, 'the page shows images, not a blank page'

    assert 'rosbag2 sequence' in (out / 'graph.log').read_text()
    # The synthetic world is already z-up with the floor at z = 0: the player's estimate must agree.
    log = (out / 'graph.log').read_text()
    alignment_line = next(line for line in log.splitlines() if 'T_odom_world' in line)
    rotation = ast.literal_eval(alignment_line.split('T_odom_world = ')[1])
    for i in range(3):
        assert abs(rotation[i][i] - 1.0) < 1e-3, rotation
    assert abs(rotation[2][3]) < 0.02, rotation


def test_bad_input_and_an_unwritable_output_folder_exit_2_with_the_reason(tmp_path, small_scene):
    missing = demo(str(tmp_path / 'no_such_scene'), '--out', str(tmp_path / 'out'), timeout=60, cwd=tmp_path)
    assert missing.returncode == 2 and 'no_such_scene' in missing.stderr and 'does not exist' in missing.stderr
    empty = tmp_path / 'empty'
    empty.mkdir()
    not_rgbd = demo(str(empty), '--out', str(tmp_path / 'out'), timeout=60, cwd=tmp_path)
    assert not_rgbd.returncode == 2 and str(empty) in not_rgbd.stderr
    a_file = tmp_path / 'a_file'
    a_file.write_text('')
    unwritable = demo(str(small_scene), '--out', str(a_file / 'out'), timeout=60, cwd=tmp_path)
    assert unwritable.returncode == 2 and 'cannot write the report into' in unwritable.stderr, unwritable.stderr
    assert 'Traceback' not in missing.stderr + not_rgbd.stderr + unwritable.stderr


@pytest.mark.parametrize('how', ['ctrl_c', 'sigterm'])
def test_an_interrupted_demo_stops_the_graph_and_leaves_no_process(how, small_scene, tmp_path, tiny_models, run_marker):
    out = tmp_path / 'out'
    marker = run_marker
    process = subprocess.Popen(
        [
            sys.executable,
            '-P',
            '-m',
            'gpt4scene_ros.tools.demo',
            str(small_scene),
            '--out',
            str(out),
            '--model',
            str(tiny_models / 'qwen2-vl'),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, GPT4SCENE_TEST_RUN=marker),
        start_new_session=True,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        log = out / 'graph.log'
        while not (log.exists() and 'started query_node' in log.read_text()):
            assert process.poll() is None and time.monotonic() < deadline, 'the demo did not start the graph'
            time.sleep(0.2)
        time.sleep(1.0)
        assert len(marked_processes(marker)) >= 4, 'demo, bringup and its nodes are running'
        if how == 'ctrl_c':  # a terminal sends SIGINT to the whole foreground process group
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    assert 'interrupted' in stderr and 'Traceback' not in stderr, stderr
    deadline = time.monotonic() + 10
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not marked_processes(marker), 'no stray process after the demo was interrupted'
