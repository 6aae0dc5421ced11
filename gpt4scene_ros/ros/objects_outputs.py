"""The mapping node's object outputs: ``~/objects``, ``~/object_markers``, ``~/bev_marked``,
``~/keyframe_marked`` and ``~/scene_snapshot``, from the object layer's child process.

The map thread only decides that an update is due and hands over the surface it read out anyway
(:meth:`ObjectsOutputs.start_update`); a worker thread waits for the child's snapshot, builds the
messages and publishes. Keyframe images are JPEG-encoded once per keyframe, not once per update.
The worker rests between updates (``instance_max_duty``) so that on a loaded machine the object
layer leaves the CPU to integration. A child that dies or hangs is restarted (IDs continue).
"""

from __future__ import annotations

import collections
import concurrent.futures
import statistics
import time

from sensor_msgs.msg import Image
from visualization_msgs.msg import MarkerArray

from gpt4scene_ros.common.settings.mapping import MappingNodeConfig
from gpt4scene_ros.msg import ObjectInstanceArray, SceneSnapshot
from gpt4scene_ros.objects.mapper import Mapper
from gpt4scene_ros.objects.process import ObjectsProcess, ObjectsWorkerError
from gpt4scene_ros.objects.segmentation.masks import MASK_COUNTS
from gpt4scene_ros.ros.conversions.images import numpy_to_image
from gpt4scene_ros.ros.conversions.markers import instances_to_marker_array
from gpt4scene_ros.ros.conversions.scene import instance_to_msg, snapshot_to_msg
from gpt4scene_ros.ros.conversions.time import time_from_msg
from gpt4scene_ros.ros.qos import LATCHED


class ObjectsOutputs:
    """Updates of the object layer and their publication (see the module docstring)."""

    def __init__(self, node, objects: ObjectsProcess, config: MappingNodeConfig) -> None:
        self.node, self.objects, self.config = node, objects, config
        self.objects_pub = node.create_publisher(ObjectInstanceArray, '~/objects', LATCHED)
        self.object_markers_pub = node.create_publisher(MarkerArray, '~/object_markers', LATCHED)
        self.bev_marked_pub = node.create_publisher(Image, '~/bev_marked', LATCHED)
        self.keyframe_marked_pub = node.create_publisher(Image, '~/keyframe_marked', LATCHED)
        self.snapshot_pub = node.create_publisher(SceneSnapshot, '~/scene_snapshot', LATCHED)
        self.counts: collections.Counter[str] = collections.Counter()
        self.update_ms: collections.deque[float] = collections.deque(maxlen=50)
        self.published_ids: set[int] = set()
        self._keyframe_images: dict = {}  # (frame index, stamp) -> its CompressedImage, for the keyframes shown
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='objects-outputs')
        self._job: concurrent.futures.Future | None = None
        self._version = -1  # map version of the last update
        self._rest_until_s = 0.0
        self._last_start_s = -float('inf')

    def ready(self, mapper: Mapper, now_s: float) -> bool:
        """On the map thread: whether an update should start now (the worker is free and rested, a period has
        passed, and the map changed or keyframe candidates wait)."""
        if self._job is not None and not self._job.done():
            return False
        if not self.objects.alive:  # found dead between updates: restart it off the map thread
            self._job = self._worker.submit(self.restart, ObjectsWorkerError('the object-layer process exited'))
            return False
        if now_s < self._rest_until_s or now_s - self._last_start_s < self.config.instance_period_s * 0.999:
            return False
        return mapper.version != self._version or self.objects.has_new_candidates()

    def start_update(self, version: int, surface, stamp, frame_id: str, now_s: float) -> None:
        """On the map thread (after :meth:`ready`): hand the surface of map ``version`` (cached, read-only
        arrays) to the worker. When the map has not changed since the last update, every waiting keyframe
        candidate is used at once (nothing to integrate competes with it)."""
        map_idle = version == self._version
        self._version = version
        self._last_start_s = now_s
        self._job = self._worker.submit(self._update, surface, version, stamp, frame_id, map_idle)

    def _update(self, surface, version: int, stamp, frame_id: str, all_candidates: bool) -> None:
        started = time.monotonic()
        try:
            snapshot = self.objects.update(*surface, time_from_msg(stamp), version, all_candidates)
            took = time.monotonic() - started
            self._rest_until_s = time.monotonic() + took * (1.0 / self.config.instance_max_duty - 1.0)
            self.update_ms.append(snapshot.timing_ms['total'])
            self._publish(snapshot, stamp, frame_id)
        except Exception as error:  # noqa: BLE001 - keep mapping whatever the object layer does
            if not self.node.context.ok():
                return  # the node is shutting down while an update finished: nothing to publish to
            self.counts['instance_update_errors'] += 1
            if isinstance(error, ObjectsWorkerError):  # its process died or hung
                self.restart(error)
            else:
                self.node.get_logger().error(f'instance update failed: {error!r}', throttle_duration_sec=5.0)

    def _publish(self, snapshot, stamp, frame_id: str) -> None:
        array = ObjectInstanceArray(instances=[instance_to_msg(i) for i in snapshot.instances])
        array.header.stamp, array.header.frame_id = stamp, frame_id
        self.objects_pub.publish(array)
        ids = {i.id for i in snapshot.instances}
        self.object_markers_pub.publish(
            instances_to_marker_array(snapshot.instances, self.published_ids - ids, stamp, frame_id)
        )
        self.published_ids = ids
        self.bev_marked_pub.publish(numpy_to_image(snapshot.bev_marked(), 'rgb8', stamp, frame_id))
        if snapshot.keyframes:
            newest = max(snapshot.keyframes, key=lambda k: k.stamp_s)
            self.keyframe_marked_pub.publish(numpy_to_image(snapshot.marked(newest), 'rgb8', stamp, frame_id))
        message = snapshot_to_msg(snapshot, frame_id, self._keyframe_images)
        message.header.stamp = stamp
        self.snapshot_pub.publish(message)

    def restart(self, error: Exception) -> None:
        """Restart the child after ``error`` (its instances are rebuilt from the map with new IDs)."""
        self.node.get_logger().error(
            f'{error}; restarting the object layer (the instances are rebuilt from the map with new IDs)'
        )
        try:
            self.objects.restart()
        except ObjectsWorkerError as again:
            self.node.get_logger().error(
                f'the object layer could not be restarted: {again}', throttle_duration_sec=30.0
            )
        self._version = -1

    def diagnostics(self) -> dict:
        objects = self.objects
        update_ms = list(self.update_ms)
        values = {
            'instances': len(self.published_ids),
            'instance_update_ms_median': round(statistics.median(update_ms), 1) if update_ms else 0,
            'keyframe_candidates': objects.counts['candidates'],
            'keyframe_candidates_waiting': objects.waiting_candidates,
            'keyframe_candidates_dropped': objects.counts['candidates_dropped']
            + objects.counts['candidates_dropped_in_worker'],
            'object_layer_restarts': objects.counts['restarts'],
            'instance_update_errors': self.counts['instance_update_errors'],
            **{name: objects.counts[name] for name in MASK_COUNTS},
        }
        return values

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
        self.objects.close()
