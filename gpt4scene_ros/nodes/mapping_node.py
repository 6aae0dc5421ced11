"""``mapping_node``: fuses RGB-D + odometry into a TSDF map; publishes the BEV, cloud and mesh.

Inputs (relative, remappable): ``camera/color/image_raw``, ``camera/depth/image_raw``
(16UC1 millimetres or 32FC1 metres, registered to colour), ``camera/color/camera_info``
and ``odom`` (nav_msgs/Odometry of the robot base); optionally ``masks`` (instance label images, the colour
stamp: :mod:`gpt4scene_ros.ros.mask_input`). Colour, depth and camera info
are synchronised (message_filters' ApproximateTimeSynchronizer where installed,
else :mod:`gpt4scene_ros.ros.fallbacks`); the base pose is interpolated from the
odometry at the image stamp; the camera's pose on the base comes from parameters
(or TF with ``use_tf``). The map lives in the odometry frame (z up).

Threading: the node spins on a single-threaded executor, whose callbacks only
convert stamps and enqueue (rclpy's multi-threaded executor spent a core polling
at 30 Hz input on two cores). One thread of its own owns the map
(:meth:`MappingNode._own_the_map`): it integrates queued frames, runs the
save/load/reset requests that the service callbacks hand it, and reads out what
the due outputs need; rendering, message building and publishing run in worker
threads (:mod:`gpt4scene_ros.ros.map_outputs`, :mod:`gpt4scene_ros.ros.objects_outputs`),
and an output nobody subscribes to is not computed.

Outputs: ``~/bev`` (rgb8 Image, north-up: row 0 is the largest map y) with
``~/bev_info`` (nav_msgs/MapMetaData: metres per pixel, size, origin = map pose
of the image's bottom-left corner), ``~/map_cloud`` (PointCloud2 xyz + rgb),
``~/mesh`` (Marker TRIANGLE_LIST), ``/diagnostics``. Services: ``~/save_map``,
``~/load_map`` (gpt4scene_ros/srv/FilePath: a file name or relative path inside
``map_directory``; anything leading out is refused, see mapping.map_directory),
``~/reset_map`` (std_srvs/Trigger).

Object instances (``instances_enabled``): every ``instance_period_s`` the map
owner hands a snapshot of the map's surface (the arrays it reads out for the
BEV anyway) to a worker thread, which has
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
clears the odometry buffer and the frame queue; the map is kept. Under
overload (:mod:`gpt4scene_ros.common.frame_queue`) the newest frames are
integrated and the others skipped, logged once with the reason.
"""

from __future__ import annotations

import collections
import concurrent.futures
import statistics
import sys
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_srvs.srv import Trigger

from gpt4scene_ros.common.frame_queue import FrameQueue
from gpt4scene_ros.common.input_watch import InputWatch, RecentCounts
from gpt4scene_ros.common.memory import return_freed_memory
from gpt4scene_ros.common.pose_buffer import PoseBuffer, PoseLookupError
from gpt4scene_ros.common.schedule import Schedule
from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.common.settings.mapping import MappingConfig, MappingNodeConfig
from gpt4scene_ros.common.transforms import make_transform, matrix_from_quaternion
from gpt4scene_ros.io.messages import decode_color, decode_depth
from gpt4scene_ros.mapping.map_directory import MapPathError, open_map_directory, resolve_map_path
from gpt4scene_ros.mapping.map_file import MapFileError
from gpt4scene_ros.mapping.tsdf import SceneMap
from gpt4scene_ros.objects.mapper import Mapper
from gpt4scene_ros.objects.process import ObjectsProcess, ObjectsWorkerError
from gpt4scene_ros.ros.conversions.camera_info import camera_info_to_intrinsics
from gpt4scene_ros.ros.conversions.geometry import pose_to_transform, transform_from_msg
from gpt4scene_ros.ros.conversions.time import time_from_msg
from gpt4scene_ros.ros.diagnostics import diagnostic_array
from gpt4scene_ros.ros.entry import run_node, spin_single_threaded
from gpt4scene_ros.ros.fallbacks import ApproximateTimeSynchronizer, Subscriber
from gpt4scene_ros.ros.map_outputs import MapOutputs
from gpt4scene_ros.ros.mask_input import MaskInput
from gpt4scene_ros.ros.objects_outputs import ObjectsOutputs
from gpt4scene_ros.ros.params import declare_settings
from gpt4scene_ros.ros.qos import sensor_input
from gpt4scene_ros.srv import FilePath

try:  # Optional: tf2_ros is not pip-installable.
    import tf2_ros
except ImportError:  # pragma: no cover - depends on the installation
    tf2_ros = None

TIME_JUMP_TOLERANCE_S = 0.001
GIL_SWITCH_INTERVAL_S = 0.001
RECENT_DROPS_S = 5.0  # dropped frames turn the diagnostics to WARN for this long
RETURN_MEMORY_PERIOD_S = 5.0  # how often freed memory goes back to the system (malloc_trim)
IDLE_WAKE_S = 0.1  # the map thread looks at its schedule at least this often
ODOMETRY_RETRY_S = 0.01  # a frame waiting for its odometry is looked at again this soon
MAP_TASK_TIMEOUT_S = 120.0  # a map service waits this long for the map thread (a large save or load)
STREAM_END_SPREAD_S = 1.0  # inputs that all went quiet within this of each other: the stream ended


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
        max_wait_s = cfg.skip_behind_s if cfg.input_qos == 'sensor_data' else 0.0
        self.frames = FrameQueue(cfg.frame_queue_size, max_wait_s, overload_window_s=RECENT_DROPS_S)
        self.tasks: collections.deque = collections.deque()  # (work, future) for the map thread
        self.counts = collections.Counter()
        self.integrate_ms = collections.deque(maxlen=200)
        self.latency_ms = collections.deque(maxlen=200)  # synchronised frame arrival -> integrated
        self.arrivals = collections.deque(maxlen=60)  # monotonic arrival of the latest synchronised frames
        self.busy_s = collections.deque(maxlen=2000)  # (monotonic end, seconds) of each map-thread work item
        self.map_frame = 'odom'
        self.base_frame = ''
        self.last_image_stamp_s = None
        self.image_jumped_at = -float('inf')
        self.last_map_stamp = None
        self.decimation = 0
        self.map_stats = (0, 0)  # blocks, bytes: read by the diagnostics, written by the map thread only
        self.waiting_for_odometry = False
        self.tf_buffer = None
        if cfg.use_tf:
            if tf2_ros is None:
                raise ValueError(
                    'use_tf is true but tf2_ros is not installed; set the base_to_optical_* parameters instead'
                )
            self.tf_buffer = tf2_ros.Buffer()
            self.tf_listener = tf2_ros.TransformListener(self.tf_buffer, self)

        # Outputs: the map's (BEV, cloud, mesh) and the object layer's, on one schedule.
        self.map_outputs = MapOutputs(self, self.map_config, cfg)
        self.objects_outputs = None
        objects = None
        if cfg.instances_enabled:
            try:
                objects = ObjectsProcess(self.instance_config, self.map_config)
            except ObjectsWorkerError as error:  # e.g. a missing or broken detector model: stop at start-up
                raise ValueError(str(error)) from None
            self.objects_outputs = ObjectsOutputs(self, objects, cfg)
        self.mapper = Mapper(
            self.scene_map, objects, on_objects_failure=self.objects_outputs.restart if objects else None
        )
        self.schedule = Schedule(self.map_outputs.periods_s, time.monotonic())

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
        self.mask_input = MaskInput(self, objects, inputs[0], qos) if objects is not None else None
        self.quiet_inputs = set()
        self.stream_ended = False
        self.memory_returned_at = 0.0
        self.recent_counts = RecentCounts(RECENT_DROPS_S)

        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(cfg.diagnostics_period_s, self._publish_diagnostics)
        self.create_service(FilePath, '~/save_map', self._on_save)
        self.create_service(FilePath, '~/load_map', self._on_load)
        self.create_service(Trigger, '~/reset_map', self._on_reset)
        self.stopping = threading.Event()
        self.map_thread = threading.Thread(target=self._own_the_map, name='map-owner', daemon=True)
        self.map_thread.start()
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
        if self.waiting_for_odometry:
            self.frames.notify()

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
            self.image_jumped_at = time.monotonic()
        self.last_image_stamp_s = stamp_s
        arrival = time.monotonic()
        self.arrivals.append(arrival)
        if not self.frames.put((stamp_s, color, depth, info), arrival):
            self.get_logger().warning('frame dropped (queue_full): the frame queue is full', throttle_duration_sec=5.0)

    # -- the map owner ---------------------------------------------------------------------------

    def _own_the_map(self):
        """The map thread: integrate, run map tasks, read out due outputs; until the node is destroyed."""
        while not self.stopping.is_set():
            now = time.monotonic()
            wait_s = min(self.schedule.seconds_until_next(now), IDLE_WAKE_S)
            if self.waiting_for_odometry:
                wait_s = min(wait_s, ODOMETRY_RETRY_S)
            self.frames.wait(wait_s)
            started = time.monotonic()
            try:
                self._run_tasks()
                self._integrate_queued_frames()
                self._run_due_outputs()
            except Exception as error:  # noqa: BLE001 - the map thread must outlive any single failure
                self.counts['map_thread_errors'] += 1
                self.get_logger().error(f'map thread: {error!r}', throttle_duration_sec=5.0)
            ended = time.monotonic()
            self.busy_s.append((ended, ended - started))

    def _on_map_thread(self, work):
        """From a service callback: run ``work()`` on the map thread and return its result (or raise)."""
        future = concurrent.futures.Future()
        self.tasks.append((work, future))
        self.frames.notify()
        return future.result(timeout=MAP_TASK_TIMEOUT_S)

    def _run_tasks(self):
        while self.tasks:
            work, future = self.tasks.popleft()
            try:
                future.set_result(work())
            except Exception as error:  # noqa: BLE001 - the caller (a service) reports it
                future.set_exception(error)
            self._update_map_stats()

    def _integrate_queued_frames(self):
        started = time.monotonic()
        self.waiting_for_odometry = False
        while time.monotonic() - started < self.config.tick_budget_s and not self.tasks:
            head, note = self.frames.peek(time.monotonic())
            if note:
                self._log_overload(note)
            if head is None:
                return
            stamp_s, color, depth, info = head.item
            try:
                T_odom_base = self.poses.lookup(stamp_s)
            except PoseLookupError as error:
                waited_s = time.monotonic() - head.arrival_s
                # After a time jump the images may come back before the odometry does: wait for it then too.
                jumped = time.monotonic() - self.image_jumped_at < 2.0 * self.config.odom_wait_s
                if waited_s < self.config.odom_wait_s and (error.reason in ('after_buffer', 'empty') or jumped):
                    self.waiting_for_odometry = True
                    return  # odometry may still arrive
                self.frames.pop(head)
                self._drop(f'odometry_{error.reason}', str(error))
                continue
            self.frames.pop(head)
            if self._integrate(stamp_s, color, depth, info, T_odom_base):
                self.latency_ms.append((time.monotonic() - head.arrival_s) * 1000.0)

    def _log_overload(self, note: str):
        arrivals = list(self.arrivals)
        rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
        integrate = statistics.median(self.integrate_ms) if self.integrate_ms else 0.0
        self.get_logger().warning(
            f'integration cannot keep up with the input ({note}; integrate median {integrate:.1f} ms per frame, '
            f'{rate:.0f} frames/s arriving): integrating the newest frames and '
            'skipping the others (adaptive stride; frames_skipped_behind, effective_stride and stride_engaged '
            'in /diagnostics). Logged once.'
        )

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
        self.decimation = result.decimation
        self.last_map_stamp = color_msg.header.stamp
        self._update_map_stats()
        return True

    def _update_map_stats(self):
        self.map_stats = (self.scene_map.num_blocks, self.scene_map.memory_bytes)

    def _stamp(self):
        return self.last_map_stamp or self.get_clock().now().to_msg()

    def _run_due_outputs(self):
        now = time.monotonic()
        stamp, frame = self._stamp(), self.map_frame
        self.map_outputs.publish_due(self.schedule.due(now), self.mapper, stamp, frame)
        objects = self.objects_outputs
        if objects is not None and objects.ready(self.mapper, now):
            version, surface = self.map_outputs.recent_surface(self.mapper, self.config.bev_period_s)
            objects.start_update(version, surface, stamp, frame, now)

    def destroy_node(self):
        """Stop the map thread, the output workers and the object layer's process, then the node."""
        self.stopping.set()
        self.frames.notify()
        self.map_thread.join(timeout=10.0)
        self.map_outputs.close()
        if self.objects_outputs is not None:
            self.objects_outputs.close()
        super().destroy_node()

    # -- diagnostics -----------------------------------------------------------------------------

    def _publish_diagnostics(self):
        now = time.monotonic()
        if self.mask_input is not None:
            self.mask_input.count_unmatched(now)
        if now - self.memory_returned_at >= RETURN_MEMORY_PERIOD_S:
            return_freed_memory()  # frames decoded in several threads leave glibc's arenas holding MBs
            self.memory_returned_at = now
        # Copies first: the map thread adds to these while this runs (dict() and list() copy without a GIL switch).
        counts = collections.Counter(dict(self.counts))
        counts.update(dict(self.frames.counts))
        dropped = sum(v for k, v in counts.items() if k.startswith('dropped_'))
        recent = self.recent_counts.add(
            now, dropped=dropped, received=counts['frames_received'], integrated=counts['frames_integrated']
        )
        ended_s = self._stream_ended_s(now)
        quiet = self.input_watch.quiet(now) if ended_s is None else []
        self._log_quiet_inputs(quiet, ended_s)
        level, message = DiagnosticStatus.OK, f'{counts["frames_integrated"]} frames integrated, {dropped} dropped'
        if ended_s is not None and ended_s >= self.config.input_timeout_s:
            level = DiagnosticStatus.WARN
            message = f'all inputs stopped {ended_s:.0f} s ago. ' + message
        elif quiet:
            level = DiagnosticStatus.ERROR
            message = 'missing input: ' + '; '.join(q.describe() for q in quiet) + '. ' + message
        elif recent['dropped']:
            level = DiagnosticStatus.WARN
            message += f' ({recent["dropped"]} in the last {RECENT_DROPS_S:.0f} s)'
        received, integrated = recent['received'], recent['integrated']
        values = dict(sorted(counts.items()))
        # Frames received per frame integrated lately: 1 while the node keeps up, more while it skips to keep up.
        values['effective_stride'] = round(received / integrated, 2) if integrated else 0
        values['stride_engaged'] = int(self.frames.overload(now))
        values['frame_queue_length'] = len(self.frames)
        values['integration_decimation'] = self.decimation
        for name, age_s in self.input_watch.ages(now).items():
            values[f'input_age_s_{name}'] = round(age_s, 2) if age_s is not None else -1
        latency_ms = list(self.latency_ms)
        for name, window in (('integrate_ms_median', list(self.integrate_ms)), ('frame_latency_ms_median', latency_ms)):
            values[name] = round(statistics.median(window), 2) if window else 0
        values['frame_latency_ms_p95'] = round(float(np.percentile(latency_ms, 95)), 2) if latency_ms else 0
        busy = sum(seconds for end, seconds in list(self.busy_s) if end > now - RECENT_DROPS_S)
        values['map_thread_busy_share'] = round(busy / RECENT_DROPS_S, 3)
        for name, window in dict(self.map_outputs.timing_ms).items():
            window = list(window)
            values[f'{name}_median'] = round(statistics.median(window), 1) if window else 0
        values.update(dict(self.map_outputs.counts))
        values['map_version'] = self.mapper.version
        values['map_blocks'], memory_bytes = self.map_stats
        values['map_memory_mb'] = round(memory_bytes / 1e6, 1)
        if self.objects_outputs is not None:
            values.update(self.objects_outputs.diagnostics())
            if not self.objects_outputs.objects.alive:
                level = max(level, DiagnosticStatus.WARN)
                message += '; object layer not running (restarting it)'
        self.diagnostics_pub.publish(
            diagnostic_array(
                self.get_clock().now().to_msg(), 'gpt4scene_ros: mapping', self.scene_map.device, level, message, values
            )
        )

    def _stream_ended_s(self, now: float) -> float | None:
        """Seconds since every input went quiet, when they all had sent messages and stopped together (the end
        of a recording, a stopped driver stack) rather than one topic going missing; else None."""
        ages = list(self.input_watch.ages(now).values())
        if None in ages or max(ages) - min(ages) > STREAM_END_SPREAD_S:
            return None
        if min(ages) < self.config.input_timeout_s - STREAM_END_SPREAD_S:
            return None
        return min(ages)

    def _log_quiet_inputs(self, quiet, ended_s: float | None):
        if ended_s is not None and ended_s >= self.config.input_timeout_s and not self.stream_ended:
            self.get_logger().info(
                f'all inputs stopped together {ended_s:.1f} s ago (the end of a recording, or the camera and '
                'odometry were stopped): the map is kept as it is'
            )
        self.stream_ended = ended_s is not None and ended_s >= self.config.input_timeout_s
        names = {q.name for q in quiet}
        for q in quiet:
            if q.name not in self.quiet_inputs:
                self.get_logger().error(f'missing input {q.describe()}: nothing is integrated without it')
        for name in self.quiet_inputs - names:
            if ended_s is None:  # back after a dropout (after the end of a stream, the next start says enough)
                self.get_logger().info(f'input {name} ({self.input_watch.topics[name]}) is back')
        self.quiet_inputs = names

    # -- map services: run on the map thread ------------------------------------------------------

    def _on_save(self, request, response):
        try:
            path = resolve_map_path(self.map_directory, request.file_path, for_writing=True)
        except MapPathError as error:
            response.success, response.message = False, f'save refused: {error}'
            return response
        try:
            note = self._on_map_thread(lambda: self.mapper.save(path, {'frame_id': self.map_frame}))
        except (OSError, ValueError, TimeoutError) as error:
            response.success, response.message = False, f'save to {request.file_path!r} failed: {error}'
        else:
            response.success = True
            response.message = f'saved {self.map_stats[0]} blocks to {path}{note}'
        return response

    def _on_load(self, request, response):
        try:
            path = resolve_map_path(self.map_directory, request.file_path, for_writing=False)
            metadata, note = self._on_map_thread(lambda: self.mapper.load(path))
        except MapPathError as error:
            response.success, response.message = False, f'load refused: {error}'
            return response
        except (OSError, MapFileError, TimeoutError) as error:
            response.success, response.message = False, f'load of {request.file_path!r} refused: {error}'
            return response
        self.map_frame = metadata.get('frame_id', self.map_frame)
        response.success = True
        response.message = f'loaded {self.map_stats[0]} blocks from {path}{note}'
        return response

    def _on_reset(self, request, response):
        try:
            # The frames still waiting to be fused (from before the request) go with the map.
            self._on_map_thread(lambda: (self.frames.clear(), self.mapper.reset()))
        except TimeoutError as error:
            response.success, response.message = False, f'reset failed: {error}'
            return response
        response.success, response.message = True, 'map cleared'
        return response


def main(args=None) -> int:
    # Open3D and rclpy calls take the GIL back many times per frame; with CPython's default 5 ms switch
    # interval each take waits up to 5 ms whenever another thread runs Python (the output workers, the
    # executor): a 12 ms integration took 75 ms next to a busy Python thread, 27 ms with 1 ms (BENCHMARKS.md).
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    return run_node(MappingNode, spin_single_threaded, args)


if __name__ == '__main__':
    raise SystemExit(main())
