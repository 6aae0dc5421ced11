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
``~/load_map`` (gpt4scene_ros/srv/FilePath), ``~/reset_map`` (std_srvs/Trigger).

Bad input never reaches the map: every dropped frame is counted by reason in
the diagnostics and logged (throttled). Time jumping backwards (a bag loop)
clears the odometry buffer and the frame queue; the map is kept.
"""

from __future__ import annotations

import collections
import concurrent.futures
import statistics
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import MapMetaData, Odometry
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker

from ..core.config import MappingConfig, MappingNodeConfig
from ..core.mapping import MapFileError, SceneMap
from ..core.mesh import decimate_mesh
from ..core.pose_buffer import PoseBuffer, PoseLookupError
from ..core.transforms import make_transform, matrix_from_quaternion
from ..srv import FilePath
from .conversions import (camera_info_to_intrinsics, mesh_to_marker, numpy_to_image, point_cloud_to_msg,
                          pose_to_transform, time_from_msg, transform_from_msg)
from .entry import run_node, spin_multi_threaded
from .fallbacks import ApproximateTimeSynchronizer, CvBridge, CvBridgeError, Subscriber
from .params import declare_settings

try:  # Optional: tf2_ros is not pip-installable.
    import tf2_ros
except ImportError:  # pragma: no cover - depends on the installation
    tf2_ros = None

TIME_JUMP_TOLERANCE_S = 0.001


class MappingNode(Node):
    NODE_NAME = 'mapping_node'

    def __init__(self, **node_kwargs):
        super().__init__(self.NODE_NAME, **node_kwargs)
        self.map_config = declare_settings(self, MappingConfig)
        self.config = cfg = declare_settings(self, MappingNodeConfig)
        self.scene_map = SceneMap(self.map_config)
        self.T_base_optical = make_transform(matrix_from_quaternion(cfg.base_to_optical_rotation_xyzw),
                                             cfg.base_to_optical_translation_m)
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
        self.map_version = 0
        self.bridge = CvBridge()
        self.mesh_worker = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.mesh_job = None
        self.tf_buffer = None
        if cfg.use_tf:
            if tf2_ros is None:
                raise ValueError('use_tf is true but tf2_ros is not installed; set the base_to_optical_* '
                                 'parameters instead')
            self.tf_buffer = tf2_ros.Buffer()
            self.tf_listener = tf2_ros.TransformListener(self.tf_buffer, self)

        reliability = (qos_profile_sensor_data.reliability if cfg.input_qos == 'sensor_data'
                       else ReliabilityPolicy.RELIABLE)
        qos = QoSProfile(depth=cfg.input_history_depth, reliability=reliability)
        inputs = [Subscriber(self, Image, 'camera/color/image_raw', qos_profile=qos),
                  Subscriber(self, Image, 'camera/depth/image_raw', qos_profile=qos),
                  Subscriber(self, CameraInfo, 'camera/color/camera_info', qos_profile=qos)]
        self.synchronizer = ApproximateTimeSynchronizer(inputs, cfg.sync_queue_size, cfg.sync_slop_s)
        self.synchronizer.registerCallback(self._on_frame)
        self.create_subscription(Odometry, 'odom', self._on_odometry, qos)

        self.bev_pub = self.create_publisher(Image, '~/bev', 1)
        self.bev_info_pub = self.create_publisher(MapMetaData, '~/bev_info', 1)
        self.cloud_pub = self.create_publisher(PointCloud2, '~/map_cloud', 1)
        self.mesh_pub = self.create_publisher(Marker, '~/mesh', 1)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)

        # One group owns the map: integration, outputs and map services never overlap. A single timer
        # integrates and then publishes whatever output is due, so no output timer can be starved by it.
        owner = MutuallyExclusiveCallbackGroup()
        self.output_periods_s = {self._publish_bev: cfg.bev_period_s, self._publish_cloud: cfg.cloud_period_s,
                                 self._publish_mesh: cfg.mesh_period_s,
                                 self._publish_diagnostics: cfg.diagnostics_period_s}
        self.output_due_s = {publish: 0.0 for publish in self.output_periods_s}
        self.create_timer(cfg.tick_period_s, self._tick, callback_group=owner)
        self.create_service(FilePath, '~/save_map', self._on_save, callback_group=owner)
        self.create_service(FilePath, '~/load_map', self._on_load, callback_group=owner)
        self.create_service(Trigger, '~/reset_map', self._on_reset, callback_group=owner)
        self.get_logger().info(
            f'mapping on {self.scene_map.device}, voxel {self.map_config.voxel_size_m} m; '
            f'inputs synchronised by {type(self.synchronizer).__module__}')

    # -- sensor callbacks: convert stamps, enqueue, count ---------------------------------------

    def _drop(self, reason: str, detail: str = ''):
        self.counts[f'dropped_{reason}'] += 1
        self.get_logger().warning(f'frame dropped ({reason}){": " + detail if detail else ""}',
                                  throttle_duration_sec=5.0)

    def _on_odometry(self, msg: Odometry):
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
            self.get_logger().warning(f'image time jumped backwards by {self.last_image_stamp_s - stamp_s:.3f} s: '
                                      'frame queue cleared (map kept)')
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
        while self.frames:
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
            color = self.bridge.imgmsg_to_cv2(color_msg, desired_encoding='rgb8')
            depth = self.bridge.imgmsg_to_cv2(depth_msg, desired_encoding='passthrough')
            if depth_msg.encoding in ('16UC1', 'mono16'):
                depth_m = depth.astype(np.float32) / 1000.0
            elif depth_msg.encoding == '32FC1':
                depth_m = depth.astype(np.float32, copy=False)
            else:
                raise ValueError(f'depth encoding {depth_msg.encoding!r} is not 16UC1 (mm) or 32FC1 (m)')
            intrinsics = camera_info_to_intrinsics(info_msg)
            T_odom_optical = self._camera_pose(T_odom_base, color_msg.header.frame_id, color_msg.header.stamp)
            result = self.scene_map.integrate(np.ascontiguousarray(color), depth_m, intrinsics, T_odom_optical)
        except (ValueError, CvBridgeError, TypeError) as error:
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
        self.map_version += 1
        self.last_map_stamp = color_msg.header.stamp
        return True

    def _changed_since_last(self, output: str) -> bool:
        if self.map_version == self.published_version[output]:
            return False
        self.published_version[output] = self.map_version
        return True

    def _stamp(self):
        return self.last_map_stamp or self.get_clock().now().to_msg()

    def _publish_bev(self):
        if not self._changed_since_last('bev'):
            return
        bev = self.scene_map.render_bev()
        stamp = self._stamp()
        self.bev_pub.publish(numpy_to_image(bev.image, 'rgb8', stamp, self.map_frame))
        info = MapMetaData(map_load_time=stamp, resolution=float(bev.metres_per_pixel),
                           width=int(bev.image.shape[1]), height=int(bev.image.shape[0]))
        info.origin.position.x, info.origin.position.y = (float(v) for v in bev.origin_xy_m)
        info.origin.orientation.w = 1.0
        self.bev_info_pub.publish(info)

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
            vertices, colors, triangles = decimate_mesh(*mesh, self.config.mesh_max_triangles,
                                                        2 * self.map_config.voxel_size_m)
            self.mesh_pub.publish(mesh_to_marker(vertices, colors, triangles, stamp, frame))
        self.mesh_job = self.mesh_worker.submit(build_and_publish)

    def _publish_diagnostics(self):
        status = DiagnosticStatus(name='gpt4scene_ros: mapping', hardware_id=self.scene_map.device)
        dropped = sum(v for k, v in self.counts.items() if k.startswith('dropped_'))
        status.level = DiagnosticStatus.WARN if dropped else DiagnosticStatus.OK
        status.message = f'{self.counts["frames_integrated"]} frames integrated, {dropped} dropped'
        values = dict(sorted(self.counts.items()))
        for name, window in (('integrate_ms_median', self.integrate_ms), ('frame_latency_ms_median', self.latency_ms)):
            values[name] = round(statistics.median(window), 2) if window else 0
        values['map_blocks'] = self.scene_map.num_blocks
        values['map_memory_mb'] = round(self.scene_map.memory_bytes / 1e6, 1)
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    # -- map services ----------------------------------------------------------------------------

    def _on_save(self, request, response):
        try:
            self.scene_map.save(request.file_path, metadata={'frame_id': self.map_frame})
        except (OSError, ValueError) as error:
            response.success, response.message = False, f'save to {request.file_path!r} failed: {error}'
        else:
            response.success = True
            response.message = f'saved {self.scene_map.num_blocks} blocks to {request.file_path}'
        return response

    def _on_load(self, request, response):
        try:
            metadata = self.scene_map.load(request.file_path)
        except (OSError, MapFileError) as error:
            response.success, response.message = False, f'load of {request.file_path!r} refused: {error}'
            return response
        self.map_frame = (metadata or {}).get('frame_id', self.map_frame)
        self.map_version += 1
        response.success = True
        response.message = f'loaded {self.scene_map.num_blocks} blocks from {request.file_path}'
        return response

    def _on_reset(self, request, response):
        self.scene_map.reset()
        self.map_version += 1
        response.success, response.message = True, 'map cleared'
        return response


def main(args=None) -> int:
    return run_node(MappingNode, spin_multi_threaded, args)


if __name__ == '__main__':
    raise SystemExit(main())
