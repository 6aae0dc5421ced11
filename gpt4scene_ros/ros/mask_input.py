"""The mapping node's ``masks`` input: instance label images from any segmentation node, matched to colour frames
by stamp and handed to the object layer, which fuses them with the keyframe candidate of that stamp."""

from __future__ import annotations

import collections
import time

from sensor_msgs.msg import Image

from gpt4scene_ros.common.masks import FrameMasks, stamp_key
from gpt4scene_ros.io.messages import decode_masks
from gpt4scene_ros.ros.conversions.time import time_from_msg

COLOR_STAMPS_KEPT = 600  # colour stamps remembered for matching masks (20 s at 30 Hz)
MASK_MATCH_WAIT_S = 1.0  # masks whose colour frame has not arrived this long after them match none


class MaskInput:
    """Subscribes to ``masks`` on ``node``; checks each label image (encoding, size against the colour image of
    its stamp) and counts in ``node.counts``: masks_received, masks_rejected, masks_unmatched."""

    def __init__(self, node, objects, color_subscriber, qos) -> None:
        self.node = node
        self.objects = objects
        self.color_stamps: collections.OrderedDict[int, tuple[int, int]] = collections.OrderedDict()
        self.to_match: collections.deque[tuple[float, int]] = collections.deque(maxlen=COLOR_STAMPS_KEPT)
        color_subscriber.registerCallback(self._on_color)
        self.subscription = node.create_subscription(Image, 'masks', self._on_masks, qos)

    def _on_color(self, color: Image) -> None:
        self.color_stamps[stamp_key(time_from_msg(color.header.stamp))] = (color.height, color.width)
        while len(self.color_stamps) > COLOR_STAMPS_KEPT:
            self.color_stamps.popitem(last=False)

    def _on_masks(self, msg: Image) -> None:
        counts = self.node.counts
        counts['masks_received'] += 1
        key = stamp_key(time_from_msg(msg.header.stamp))
        try:
            labels = decode_masks(msg)
            shape = self.color_stamps.get(key) or next(reversed(self.color_stamps.values()), None)
            if shape is not None and labels.shape != shape:
                raise ValueError(
                    f'mask image is {labels.shape[1]}x{labels.shape[0]} but the colour image is {shape[1]}x{shape[0]}'
                )
        except ValueError as error:
            counts['masks_rejected'] += 1
            self.node.get_logger().warning(
                f'masks on {self.subscription.topic_name} rejected ({error}); the frame is fused without them',
                throttle_duration_sec=5.0,
            )
            return
        self.to_match.append((time.monotonic(), key))
        self.objects.add_masks(time_from_msg(msg.header.stamp), FrameMasks(labels.copy()))

    def count_unmatched(self, now: float) -> None:
        """Masks whose stamp no colour frame had, a while after they came: counted and logged (throttled)."""
        while self.to_match and self.to_match[0][0] < now - MASK_MATCH_WAIT_S:
            _, key = self.to_match.popleft()
            if key not in self.color_stamps:
                self.node.counts['masks_unmatched'] += 1
                self.node.get_logger().warning(
                    f'masks stamped {key / 1000.0:.3f} s match no colour frame: not fused (masks_unmatched in '
                    '/diagnostics)',
                    throttle_duration_sec=5.0,
                )
