"""Instance masks over real DDS: the player publishes a folder of SAM-like masks on ``masks`` with the colour
stamps, the mapping node fuses them into its object instances, and bad masks from another publisher (wrong
encoding, wrong size, a stamp no colour frame has) are counted in /diagnostics without touching the map."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import wait_for
from sensor_msgs.msg import Image
from test_instances_node import PARAMS, Latest
from test_mapping_node import MapOutputs

from gpt4scene_ros.objects.evaluation import load_truth, match_instances
from gpt4scene_ros.ros.conversions.images import numpy_to_image
from gpt4scene_ros.ros.conversions.scene import instance_from_msg
from gpt4scene_ros.ros.conversions.time import time_to_msg
from gpt4scene_ros.sim.masks import MaskDegradation, write_sam_like_masks
from gpt4scene_ros.sim.scene import SyntheticSceneConfig
from gpt4scene_ros.sim.writer import write_sequence


@pytest.fixture(scope='module')
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp('masks_node') / 'scene'
    write_sequence(SyntheticSceneConfig(seed=5, num_frames=90, clutter='none').with_resolution(320, 240), folder)
    masks = folder.parent / 'masks'
    write_sam_like_masks(folder, masks, MaskDegradation(), seed=7)
    for index in (3, 4):  # a folder missing a few frames: those are played without masks
        (masks / f'frame-{index:06d}.mask.png').unlink()
    return folder, masks


@pytest.mark.realtime
def test_player_masks_become_the_instances_and_bad_masks_are_counted(scene, ros_node, start_node):
    folder, masks = scene
    latest = Latest(ros_node)
    outputs = MapOutputs(ros_node, keys=('diagnostics',))
    mapping = start_node('mapping_node', PARAMS)
    bad = ros_node.create_publisher(Image, 'masks', 10)
    player = start_node(
        'player',
        {
            'data_dir': str(folder),
            'masks_dir': str(masks),
            'playback_mode': 'as_fast_as_possible',
            'wait_for_subscribers': 1,
        },
    )
    # Bad masks while the frames flow: not a label encoding, the wrong size, a stamp of no colour frame.
    wait_for(lambda: outputs.counters().get('frames_integrated', 0) >= 5, 60, 'frames integrated')
    bad.publish(numpy_to_image(np.zeros((240, 320, 3), np.uint8), 'rgb8', time_to_msg(1.0), 'camera'))
    bad.publish(numpy_to_image(np.zeros((120, 160), np.uint16), 'mono16', time_to_msg(2.0), 'camera'))
    bad.publish(numpy_to_image(np.ones((240, 320), np.uint16), 'mono16', time_to_msg(3.0), 'camera'))
    assert player.wait(180) == 0, player.output
    assert 'done: 90 frames published, 0 skipped, 2 without masks' in player.output, player.output

    truth = load_truth(folder / 'instances.json')

    # The instances made once the masks are fused (the first updates may come before any masks reach the layer).
    wait_for(lambda: outputs.counters().get('mask_views', 0) >= 10, 60, 'masks fused', details=outputs.counters)

    def scored():
        objects = latest.get('objects')
        if objects is None or not objects.instances:
            return None
        matching = match_instances([instance_from_msg(m) for m in objects.instances], truth)
        return matching if matching.recall(0.25) >= 0.8 and matching.precision(0.25) >= 0.8 else None

    def state():
        objects = latest.get('objects')
        return f'{len(objects.instances) if objects else None} instances; {outputs.counters()}'

    wait_for(scored, 90, 'instances from the masks matching the objects', details=state)
    counters = wait_for(  # the player has stopped; the node may still be fusing its queue
        lambda: (c := outputs.counters()).get('masks_unmatched', 0) >= 1 and c.get('frames_integrated') == 90 and c,
        30,
        'the unmatched masks counted and every frame fused',
        details=outputs.counters,
    )
    assert counters['masks_received'] >= 88 + 3 and counters['masks_rejected'] == 2, counters
    masks = {k: v for k, v in counters.items() if 'mask' in k}
    assert masks['mask_views'] >= 10 and masks['masks_rejected_as_structure'] >= 10, str(masks)
    assert counters['frames_integrated'] == 90 and mapping.process.poll() is None
    log = mapping.output
    assert "mask encoding 'rgb8' is not supported" in log, log[-3000:]  # the next one within 5 s is throttled
    assert 'match no colour frame' in log
