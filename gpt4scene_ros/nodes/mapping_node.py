"""``mapping_node``: fuses RGB-D + odometry into a TSDF map; publishes the BEV, cloud and mesh.

Inputs (relative, remappable): ``camera/color/image_raw``, ``camera/depth/image_raw``
(16UC1 millimetres or 32FC1 metres, registered to colour), ``camera/color/camera_info``
and ``odom`` (nav_msgs/Odometry of the robot base). Colour, depth and camera info
are synchronised (message_filters' ApproximateTimeSynchronizer where installed,
else :mod:`gpt4scene_ros.ros.fallbacks`); the base pose is interpolated from the
odometry at the image stamp; the camera's pose on the base comes from parameters
(or TF with ``use_tf``). The map lives in the odometry frame (z up).

Threading: sensor callbacks only convert stamps and enqueue. One timer in its
own callback group (``tick``) owns the map: it integrates queued frames, runs
the save/load/reset services and publishes the outputs, so nothing else ever
touches the map.

Outputs: ``~/bev`` (rgb8 Image, north-up: row 0 is the largest map y) with
``~/bev_info`` (nav_msgs/MapMetaData: metres per pixel, size, origin = map pose
of the image's bottom-left corner), ``~/map_cloud`` (PointCloud2 xyz + rgb),
``~/mesh`` (Marker TRIANGLE_LIST), ``/diagnostics``. Services: ``~/save_map``,
``~/load_map`` (gpt4scene_ros/srv/FilePath: a file name or relative path inside
``map_directory``; anything leading out is refused, see core.map_store),
``~/reset_map`` (std_srvs/Trigger).

Object instances (``instances_enabled``): every ``instance_period_s`` the map
owner hands a snapshot of the map's surface (the cached arrays it extracts for
the BEV anyway) to a worker thread, which has
:class:`gpt4scene_ros.objects.scene_objects.SceneObjects` update it in a child process
(:mod:`gpt4scene_ros.objects.process`: off this process's GIL; a child that
dies is restarted, IDs continue) and publishes ``~/objects``
(ObjectInstanceArray, latched), ``~/object_markers`` (MarkerArray: oriented box
and label per instance, marker id = instance id, DELETE for instances that are
gone), ``~/bev_marked`` and ``~/keyframe_marked`` (rgb8 Images: the BEV and the
newest keyframe with their ID markers) and ``~/scene_snapshot``
(gpt4scene_ros/msg/SceneSnapshot, latched: BEV, keyframes with markers and
instances of one map state, for the query service). The instances are saved
with the map and restored by ``~/load_map``, so their IDs survive a restart.

Bad input never reaches the map: every dropped frame is counted by reason in
the diagnostics and logged (throttled). Time jumping backwards (a bag loop)
clears the odometry buffer and the frame queue; the map is kept.
"""

from __future__ import annotations

import collections
import concurrent.futures
import statistics
import sys
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import MapMetaData, Odometry
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker, MarkerArray

from gpt4scene_ros.common.input_watch import InputWatch, RecentCounts
from gpt4scene_ros.common.pose_buffer import PoseBuffer, PoseLookupError
from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.common.settings.mapping import MappingConfig, MappingNodeConfig
from gpt4scene_ros.common.transforms import make_transform, matrix_from_quaternion
from gpt4scene_ros.io.messages import decode_color, decode_depth
from gpt4scene_ros.mapping.bev import map_bev
from gpt4scene_ros.mapping.map_directory import MapPathError, open_map_directory, resolve_map_path
from gpt4scene_ros.mapping.map_file import MapFileError
from gpt4scene_ros.mapping.mesh import decimate_mesh
from gpt4scene_ros.mapping.tsdf import SceneMap
from gpt4scene_ros.msg import ObjectInstanceArray, SceneSnapshot
from gpt4scene_ros.objects.mapper import Mapper
from gpt4scene_ros.objects.process import ObjectsProcess, ObjectsWorkerError
from gpt4scene_ros.ros.conversions.camera_info import camera_info_to_intrinsics
from gpt4scene_ros.ros.conversions.geometry import pose_to_transform, transform_from_msg
from gpt4scene_ros.ros.conversions.images import numpy_to_image
from gpt4scene_ros.ros.conversions.markers import instances_to_marker_array, mesh_to_marker
from gpt4scene_ros.ros.conversions.point_cloud import point_cloud_to_msg
from gpt4scene_ros.ros.conversions.scene import bev_info_msg, instance_to_msg, snapshot_to_msg
from gpt4scene_ros.ros.conversions.time import time_from_msg
from gpt4scene_ros.ros.diagnostics import diagnostic_array
from gpt4scene_ros.ros.entry import run_node, spin_multi_threaded
from gpt4scene_ros.ros.fallbacks import ApproximateTimeSynchronizer, Subscriber
from gpt4scene_ros.ros.params import declare_settings
from gpt4scene_ros.ros.qos import LATCHED, sensor_input
from gpt4scene_ros.srv import FilePath

try:  # Optional: tf2_ros is not pip-installable.
    import tf2_ros
except ImportError:  # pragma: no cover - depends on the installation
    tf2_ros = None

TIME_JUMP_TOLERANCE_S = 0.001
GIL_SWITCH_INTERVAL_S = 0.001
RECENT_DROPS_S = 5.0  # dropped frames turn the diagnostics to WARN for this long


def _topic_name(subscriber) -> str:
    """The resolved topic of a message_filters Subscriber (or of the fallback: both keep ``sub``)."""
    subscription = getattr(subscriber, 'sub', None)
    return getattr(subscription, 'topic_name', None) or getattr(subscriber, 'topic', '?')


class MappingNode(Node):
    NODE_NAME = 'mapping_node'

    def __init__(self, **node_kwargs):
        super().__init__(self.NODE_NAME, **node_kwargs)
        self.map_config = declare_settings(self, MappingConfig)
        self.config = cfg = declare_settings(self, MappingNodeConfig)
        self.instance_config = declare_settings(self, InstanceConfig)
        try:
            self.map_directory = open_map_directory(cfg.map_directory)
        except MapPathError as error:
            raise ValueError(f'parameter map_directory={cfg.map_directory!r}: {error}') from None
        self.scene_map = SceneMap(self.map_config)
        self.T_base_optical = make_transform(
            matrix_from_quaternion(cfg.base_to_optical_rotation_xyzw), cfg.base_to_optical_translation_m
        )
        self.poses = PoseBuffer(max_age_s=cfg.odom_buffer_s, max_gap_s=cfg.odom_max_gap_s)
        self.frames = collections.deque()
        self.counts = collections.Counter()
        self.integrate_ms = collections.deque(maxlen=200)
        self.latency_ms = collections.deque(maxlen=200)  # synchronised frame arrival -> integrated
        self.map_frame = 'odom'
        self.base_frame = ''
        self.last_image_stamp_s = None
        self.last_map_stamp = None
        self.published_version = {'bev': -1, 'cloud': -1, 'mesh': -1}
        self.mesh_worker = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.mesh_job = None
        # The object layer runs in a child process; one worker thread here sends it the updates and publishes.
        self.objects = None
        if cfg.instances_enabled:
            try:
                self.objects = ObjectsProcess(self.instance_config, self.map_config)
            except ObjectsWorkerError as error:  # e.g. a missing or broken detector model: stop at start-up
                raise ValueError(str(error)) from None
        self.mapper = Mapper(self.scene_map, self.objects, on_objects_failure=self._restart_objects)
        self.objects_worker = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.objects_job = None
        self.objects_version = -1
        self.objects_rest_until = 0.0
        self.published_instance_ids = set()
        self.instance_update_ms = collections.deque(maxlen=50)
        self.tf_buffer = None
        if cfg.use_tf:
            if tf2_ros is None:
                raise ValueError(
                    'use_tf is true but tf2_ros is not installed; set the base_to_optical_* parameters instead'
                )
            self.tf_buffer = tf2_ros.Buffer()
            self.tf_listener = tf2_ros.TransformListener(self.tf_buffer, self)

        qos = sensor_input(cfg.input_qos, cfg.input_history_depth)
        inputs = [
            Subscriber(self, Image, 'camera/color/image_raw', qos_profile=qos),
            Subscriber(self, Image, 'camera/depth/image_raw', qos_profile=qos),
            Subscriber(self, CameraInfo, 'camera/color/camera_info', qos_profile=qos),
        ]
        self.synchronizer = ApproximateTimeSynchronizer(inputs, cfg.sync_queue_size, cfg.sync_slop_s)
        self.synchronizer.registerCallback(self._on_frame)
        odometry = self.create_subscription(Odometry, 'odom', self._on_odometry, qos)
        topics = {name: _topic_name(sub) for name, sub in zip(('color', 'depth', 'camera_info'), inputs)}
        self.input_watch = InputWatch(
            {**topics, 'odometry': odometry.topic_name}, cfg.input_timeout_s, time.monotonic()
        )
        for name, sub in zip(topics, inputs):
            sub.registerCallback(lambda _msg, name=name: self.input_watch.seen(name, time.monotonic()))
        self.quiet_inputs = set()
        self.recent_counts = RecentCounts(RECENT_DROPS_S)

        # Map outputs are published when the map changed, and latched (see ros/qos.py).
        self.bev_pub = self.create_publisher(Image, '~/bev', LATCHED)
        self.bev_info_pub = self.create_publisher(MapMetaData, '~/bev_info', LATCHED)
        self.cloud_pub = self.create_publisher(PointCloud2, '~/map_cloud', LATCHED)
        self.mesh_pub = self.create_publisher(Marker, '~/mesh', LATCHED)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.objects_pub = self.create_publisher(ObjectInstanceArray, '~/objects', LATCHED)
        self.object_markers_pub = self.create_publisher(MarkerArray, '~/object_markers', LATCHED)
        self.bev_marked_pub = self.create_publisher(Image, '~/bev_marked', LATCHED)
        self.keyframe_marked_pub = self.create_publisher(Image, '~/keyframe_marked', LATCHED)
        self.snapshot_pub = self.create_publisher(SceneSnapshot, '~/scene_snapshot', LATCHED)

        # One group owns the map: integration, outputs and map services never overlap. A single timer
        # integrates and then publishes whatever output is due, so no output timer can be starved by it.
        owner = MutuallyExclusiveCallbackGroup()
        self.output_periods_s = {
            self._publish_bev: cfg.bev_period_s,
            self._publish_cloud: cfg.cloud_period_s,
            self._publish_mesh: cfg.mesh_period_s,
            self._publish_diagnostics: cfg.diagnostics_period_s,
        }
        if self.objects is not None:
            self.output_periods_s[self._start_instance_update] = cfg.instance_period_s
        self.output_due_s = {publish: 0.0 for publish in self.output_periods_s}
        self.create_timer(cfg.tick_period_s, self._tick, callback_group=owner)
        self.create_service(FilePath, '~/save_map', self._on_save, callback_group=owner)
        self.create_service(FilePath, '~/load_map', self._on_load, callback_group=owner)
        self.create_service(Trigger, '~/reset_map', self._on_reset, callback_group=owner)
        self.get_logger().info(
            f'mapping on {self.scene_map.device}, voxel {self.map_config.voxel_size_m} m; '
            f'inputs synchronised by {type(self.synchronizer).__module__}'
        )

    # -- sensor callbacks: convert stamps, enqueue, count ---------------------------------------

    def _drop(self, reason: str, detail: str = ''):
        self.counts[f'dropped_{reason}'] += 1
        self.get_logger().warning(
            f'frame dropped ({reason}){": " + detail if detail else ""}', throttle_duration_sec=5.0
        )

    def _on_odometry(self, msg: Odometry):
        self.input_watch.seen('odometry', time.monotonic())
        try:
            T_odom_base = pose_to_transform(msg.pose.pose)
            outcome = self.poses.add(time_from_msg(msg.header.stamp), T_odom_base)
        except ValueError as error:
            self.counts['odometry_rejected'] += 1
            self.get_logger().warning(f'odometry rejected: {error}', throttle_duration_sec=5.0)
            return
        self.counts['odometry_received'] += 1
        self.map_frame, self.base_frame = msg.header.frame_id or self.map_frame, msg.child_frame_id
        if outcome == 'reset':
            self.counts['odometry_time_jumps'] += 1
            self.get_logger().warning('odometry time jumped backwards: odometry buffer cleared (map kept)')

    def _on_frame(self, color: Image, depth: Image, info: CameraInfo):
        self.counts['frames_received'] += 1
        stamp_s = time_from_msg(color.header.stamp)
        if self.last_image_stamp_s is not None and stamp_s < self.last_image_stamp_s - TIME_JUMP_TOLERANCE_S:
            self.counts['image_time_jumps'] += 1
            self.get_logger().warning(
                f'image time jumped backwards by {self.last_image_stamp_s - stamp_s:.3f} s: '
                'frame queue cleared (map kept)'
            )
            self.frames.clear()
        self.last_image_stamp_s = stamp_s
        if len(self.frames) >= self.config.frame_queue_size:
            self.frames.popleft()
            self._drop('queue_full')
        self.frames.append((stamp_s, time.monotonic(), color, depth, info))

    # -- the map owner ---------------------------------------------------------------------------

    def _tick(self):
        self._integrate_queued_frames()
        now = time.monotonic()
        for publish, period_s in self.output_periods_s.items():
            if now >= self.output_due_s[publish]:
                self.output_due_s[publish] = now + period_s
                publish()

    def _integrate_queued_frames(self):
        started = time.monotonic()
        skip_behind_s = self.config.skip_behind_s if self.config.input_qos == 'sensor_data' else 0.0
        while self.frames and time.monotonic() - started < self.config.tick_budget_s:
            if skip_behind_s > 0.0:
                now = time.monotonic()
                while len(self.frames) > 1 and now - self.frames[0][1] > skip_behind_s:
                    self.frames.popleft()
                    self.counts['frames_skipped_behind'] += 1
            stamp_s, arrival, color, depth, info = self.frames[0]
            try:
                T_odom_base = self.poses.lookup(stamp_s)
            except PoseLookupError as error:
                if error.reason in ('after_buffer', 'empty') and time.monotonic() - arrival < self.config.odom_wait_s:
                    return  # odometry may still arrive
                self.frames.popleft()
                self._drop(f'odometry_{error.reason}', str(error))
                continue
            self.frames.popleft()
            if self._integrate(stamp_s, color, depth, info, T_odom_base):
                self.latency_ms.append((time.monotonic() - arrival) * 1000.0)

    def _camera_pose(self, T_odom_base: np.ndarray, optical_frame: str, stamp) -> np.ndarray:
        if self.tf_buffer is None:
            return T_odom_base @ self.T_base_optical
        transform = self.tf_buffer.lookup_transform(self.base_frame, optical_frame, stamp)
        return T_odom_base @ transform_from_msg(transform.transform)

    def _integrate(self, stamp_s, color_msg, depth_msg, info_msg, T_odom_base) -> bool:
        """Integrate one frame; False (counted, logged) when it was dropped."""
        try:
            color = decode_color(color_msg)
            depth, depth_scale = decode_depth(depth_msg)
            intrinsics = camera_info_to_intrinsics(info_msg)
            T_odom_optical = self._camera_pose(T_odom_base, color_msg.header.frame_id, color_msg.header.stamp)
            result = self.mapper.integrate(
                color, depth, intrinsics, T_odom_optical, stamp_s, self.counts['frames_integrated'] + 1, depth_scale
            )
        except (ValueError, TypeError) as error:
            self._drop('bad_input', str(error))
            return False
        except Exception as error:  # TF lookups and anything unforeseen: drop the frame, keep mapping
            self._drop('error', repr(error))
            return False
        if result.invalid_depth_pixels:
            self.counts['invalid_depth_pixels'] += result.invalid_depth_pixels
        if not result.integrated:
            self._drop(result.reason)
            return False
        self.counts['frames_integrated'] += 1
        self.integrate_ms.append(result.duration_ms)
        self.last_map_stamp = color_msg.header.stamp
        return True

    def _changed_since_last(self, output: str) -> bool:
        if self.mapper.version == self.published_version[output]:
            return False
        self.published_version[output] = self.mapper.version
        return True

    def _stamp(self):
        return self.last_map_stamp or self.get_clock().now().to_msg()

    def _publish_bev(self):
        if not self._changed_since_last('bev'):
            return
        bev = map_bev(*self.scene_map.point_cloud(), self.map_config)
        stamp = self._stamp()
        self.bev_pub.publish(numpy_to_image(bev.image, 'rgb8', stamp, self.map_frame))
        self.bev_info_pub.publish(bev_info_msg(bev, stamp))

    def _publish_cloud(self):
        if self._changed_since_last('cloud'):
            points, colors = self.scene_map.point_cloud()
            self.cloud_pub.publish(point_cloud_to_msg(points, colors, self._stamp(), self.map_frame))

    def _publish_mesh(self):
        """Extract the mesh here (map access); simplify and build the marker off the map's thread."""
        if not self._changed_since_last('mesh') or (self.mesh_job is not None and not self.mesh_job.done()):
            return
        mesh, stamp, frame = self.scene_map.mesh(), self._stamp(), self.map_frame

        def build_and_publish():
            vertices, colors, triangles = decimate_mesh(
                *mesh, self.config.mesh_max_triangles, 2 * self.map_config.voxel_size_m
            )
            self.mesh_pub.publish(mesh_to_marker(vertices, colors, triangles, stamp, frame))

        self.mesh_job = self.mesh_worker.submit(build_and_publish)

    def _start_instance_update(self):
        """On the map thread: hand the map's surface (cached arrays, read-only) to the objects worker."""
        if self.objects_job is not None and not self.objects_job.done():
            return
        if not self.objects.alive:  # found dead between updates: restart it off the map thread
            self.objects_job = self.objects_worker.submit(
                self._restart_objects, ObjectsWorkerError('the object-layer process exited')
            )
            return
        if time.monotonic() < self.objects_rest_until:
            return
        map_idle = self.mapper.version == self.objects_version
        if map_idle and not self.objects.has_new_candidates():
            return
        self.objects_version = self.mapper.version
        surface = self.scene_map.surface()
        stamp, frame = self._stamp(), self.map_frame
        self.objects_job = self.objects_worker.submit(
            self._update_instances, surface, self.mapper.version, stamp, frame, map_idle
        )

    def _update_instances(self, surface, version, stamp, frame, all_candidates=False):
        """In the objects worker: update the instances, keyframes and markers, and publish them. With
        ``all_candidates`` (the map did not change since the last update: nothing to integrate competes) every
        waiting keyframe candidate is used at once rather than ``candidates_per_update`` of them."""
        started = time.monotonic()
        try:
            snapshot = self.objects.update(*surface, time_from_msg(stamp), version, all_candidates)
            took = time.monotonic() - started
            self.objects_rest_until = time.monotonic() + took * (1.0 / self.config.instance_max_duty - 1.0)
            self.instance_update_ms.append(snapshot.timing_ms['total'])
            array = ObjectInstanceArray(instances=[instance_to_msg(i) for i in snapshot.instances])
            array.header.stamp, array.header.frame_id = stamp, frame
            self.objects_pub.publish(array)
            ids = {i.id for i in snapshot.instances}
            self.object_markers_pub.publish(
                instances_to_marker_array(snapshot.instances, self.published_instance_ids - ids, stamp, frame)
            )
            self.published_instance_ids = ids
            self.bev_marked_pub.publish(numpy_to_image(snapshot.bev_marked(), 'rgb8', stamp, frame))
            if snapshot.keyframes:
                newest = max(snapshot.keyframes, key=lambda k: k.stamp_s)
                self.keyframe_marked_pub.publish(
                    numpy_to_image(newest.marked(snapshot.marker_style), 'rgb8', stamp, frame)
                )
            message = snapshot_to_msg(snapshot, frame)
            message.header.stamp = stamp
            self.snapshot_pub.publish(message)
        except Exception as error:  # keep mapping whatever the object layer does
            if not self.context.ok():
                return  # the node is shutting down while an update finished: nothing to publish to
            self.counts['instance_update_errors'] += 1
            if isinstance(error, ObjectsWorkerError):  # its process died or hung
                self._restart_objects(error)
            else:
                self.get_logger().error(f'instance update failed: {error!r}', throttle_duration_sec=5.0)

    def _restart_objects(self, error: Exception) -> None:
        self.get_logger().error(
            f'{error}; restarting the object layer (the instances are rebuilt from the map with new IDs)'
        )
        try:
            self.objects.restart()
        except ObjectsWorkerError as again:
            self.get_logger().error(f'the object layer could not be restarted: {again}', throttle_duration_sec=30.0)
        self.objects_version = -1

    def destroy_node(self):
        if self.objects is not None:
            self.objects.close()
        super().destroy_node()

    def _publish_diagnostics(self):
        now = time.monotonic()
        dropped = sum(v for k, v in self.counts.items() if k.startswith('dropped_'))
        recent = self.recent_counts.add(
            now, dropped=dropped, received=self.counts['frames_received'], integrated=self.counts['frames_integrated']
        )
        quiet = self.input_watch.quiet(now)
        self._log_quiet_inputs(quiet)
        level, message = DiagnosticStatus.OK, f'{self.counts["frames_integrated"]} frames integrated, {dropped} dropped'
        if quiet:
            level = DiagnosticStatus.ERROR
            message = 'missing input: ' + '; '.join(q.describe() for q in quiet) + '. ' + message
        elif recent['dropped']:
            level = DiagnosticStatus.WARN
            message += f' ({recent["dropped"]} in the last {RECENT_DROPS_S:.0f} s)'
        received, integrated = recent['received'], recent['integrated']
        values = dict(sorted(self.counts.items()))
        # Frames received per frame integrated lately: 1 while the node keeps up, more while it skips to keep up.
        values['effective_stride'] = round(received / integrated, 2) if integrated else 0
        for name, age_s in self.input_watch.ages(now).items():
            values[f'input_age_s_{name}'] = round(age_s, 2) if age_s is not None else -1
        for name, window in (('integrate_ms_median', self.integrate_ms), ('frame_latency_ms_median', self.latency_ms)):
            values[name] = round(statistics.median(window), 2) if window else 0
        values['frame_latency_ms_p95'] = round(float(np.percentile(self.latency_ms, 95)), 2) if self.latency_ms else 0
        values['map_version'] = self.mapper.version
        values['map_blocks'] = self.scene_map.num_blocks
        values['map_memory_mb'] = round(self.scene_map.memory_bytes / 1e6, 1)
        if self.objects is not None:
            values['instances'] = len(self.published_instance_ids)
            values['instance_update_ms_median'] = (
                round(statistics.median(self.instance_update_ms), 1) if self.instance_update_ms else 0
            )
            values['keyframe_candidates'] = self.objects.counts['candidates']
            values['keyframe_candidates_waiting'] = self.objects.waiting_candidates
            values['keyframe_candidates_dropped'] = (
                self.objects.counts['candidates_dropped'] + self.objects.counts['candidates_dropped_in_worker']
            )
            values['object_layer_restarts'] = self.objects.counts['restarts']
            if not self.objects.alive:
                level = max(level, DiagnosticStatus.WARN)
                message += '; object layer not running (restarting it)'
        self.diagnostics_pub.publish(
            diagnostic_array(
                self.get_clock().now().to_msg(), 'gpt4scene_ros: mapping', self.scene_map.device, level, message, values
            )
        )

    def _log_quiet_inputs(self, quiet):
        names = {q.name for q in quiet}
        for q in quiet:
            if q.name not in self.quiet_inputs:
                self.get_logger().error(f'missing input {q.describe()}: nothing is integrated without it')
        for name in self.quiet_inputs - names:
            self.get_logger().info(f'input {name} ({self.input_watch.topics[name]}) is back')
        self.quiet_inputs = names

    # -- map services ----------------------------------------------------------------------------

    def _on_save(self, request, response):
        try:
            path = resolve_map_path(self.map_directory, request.file_path, for_writing=True)
        except MapPathError as error:
            response.success, response.message = False, f'save refused: {error}'
            return response
        try:
            note = self.mapper.save(path, {'frame_id': self.map_frame})
        except (OSError, ValueError) as error:
            response.success, response.message = False, f'save to {request.file_path!r} failed: {error}'
        else:
            response.success = True
            response.message = f'saved {self.scene_map.num_blocks} blocks to {path}{note}'
        return response

    def _on_load(self, request, response):
        try:
            path = resolve_map_path(self.map_directory, request.file_path, for_writing=False)
            metadata, note = self.mapper.load(path)
        except MapPathError as error:
            response.success, response.message = False, f'load refused: {error}'
            return response
        except (OSError, MapFileError) as error:
            response.success, response.message = False, f'load of {request.file_path!r} refused: {error}'
            return response
        self.map_frame = metadata.get('frame_id', self.map_frame)
        response.success = True
        response.message = f'loaded {self.scene_map.num_blocks} blocks from {path}{note}'
        return response

    def _on_reset(self, request, response):
        self.mapper.reset()
        response.success, response.message = True, 'map cleared'
        return response


def main(args=None) -> int:
    # Open3D and rclpy calls take the GIL back many times per frame; with CPython's default 5 ms switch
    # interval each take waits up to 5 ms whenever another thread runs Python (the instance worker, the
    # executor): a 12 ms integration took 75 ms next to a busy Python thread, 27 ms with 1 ms (BENCHMARKS.md).
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    return run_node(MappingNode, spin_multi_threaded, args)


if __name__ == '__main__':
    raise SystemExit(main())
