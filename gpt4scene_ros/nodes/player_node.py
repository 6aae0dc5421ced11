"""``player``: publishes a recorded RGB-D sequence as ROS topics.

Topics (relative, remappable): ``camera/color/image_raw`` (rgb8),
``camera/depth/image_raw`` (16UC1 mm or 32FC1 m, registered to colour),
``camera/color/camera_info``, ``odom`` (nav_msgs/Odometry of ``base_frame`` in
``odom_frame``), and latched ``~/dataset_alignment`` (the transform from the
dataset's world frame into the gravity-aligned odometry frame). TF
odom -> base -> optical is broadcast when ``tf2_ros`` is installed.

Stamps: frame i is stamped ``start + (t_i - t_0) + loop offset``, where
``start`` is the node clock when playback begins (``stamps: now``) or the
first recorded stamp (``stamps: recorded``, for bags); stamps keep increasing
across loops. ``publish_clock`` also publishes ``/clock`` at each frame's stamp.
A rosbag2 bag is read with ``rosbags`` (its topics: ``color_topic``,
``depth_topic``, ``camera_info_topic``, ``odometry_topic``). Exit codes: 0 done, 1 nothing could be played, 2 bad
configuration or unreadable sequence.
"""

from __future__ import annotations

import time

import numpy as np
import rclpy
from geometry_msgs.msg import TransformStamped
from nav_msgs.msg import Odometry
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_srvs.srv import Trigger

from gpt4scene_ros.common.frames import depth_to_millimetres
from gpt4scene_ros.common.masks import MaskError
from gpt4scene_ros.common.settings.player import PlayerConfig
from gpt4scene_ros.common.transforms import R_BASE_OPTICAL, invert_transform, make_transform
from gpt4scene_ros.io.bags import BagTopics
from gpt4scene_ros.io.masks import MaskFolder
from gpt4scene_ros.io.open import open_sequence
from gpt4scene_ros.io.sequence import FrameError
from gpt4scene_ros.mapping.gravity import estimate_gravity_alignment, identity_alignment
from gpt4scene_ros.ros.conversions.camera_info import intrinsics_to_camera_info
from gpt4scene_ros.ros.conversions.geometry import transform_to_msg, transform_to_pose
from gpt4scene_ros.ros.conversions.images import numpy_to_image
from gpt4scene_ros.ros.conversions.time import time_to_msg
from gpt4scene_ros.ros.entry import EXIT_FAILED, EXIT_OK, run_node
from gpt4scene_ros.ros.params import declare_settings
from gpt4scene_ros.ros.qos import LATCHED, reliable

try:  # TF is optional: tf2_ros is not pip-installable.
    from tf2_ros import StaticTransformBroadcaster, TransformBroadcaster
except ImportError:  # pragma: no cover - depends on the installation
    TransformBroadcaster = StaticTransformBroadcaster = None

T_OPTICAL_BASE = invert_transform(make_transform(R_BASE_OPTICAL, np.zeros(3)))


class PlayerNode(Node):
    """Publishes one frame per :meth:`publish_next` call; ``main`` paces the calls."""

    NODE_NAME = 'player'

    def __init__(self, **node_kwargs):
        super().__init__(self.NODE_NAME, **node_kwargs)
        self.config = declare_settings(self, PlayerConfig)
        if not self.config.data_dir:
            raise ValueError(
                'parameter data_dir is empty: set it to a recorded folder (ScanNet, OpenEQA, 7-Scenes, TUM) or a bag'
            )
        cfg = self.config
        self.sequence = open_sequence(
            cfg.data_dir,
            frame_rate_hz=cfg.rate_hz,
            bag_topics=BagTopics(
                color=cfg.color_topic,
                depth=cfg.depth_topic,
                camera_info=cfg.camera_info_topic,
                odometry=cfg.odometry_topic,
            ),
        )
        end = len(self.sequence)
        if self.config.max_frames:
            end = min(end, self.config.start_index + self.config.max_frames)
        if self.config.start_index >= end:
            raise ValueError(
                f'start_index={self.config.start_index} leaves no frames to play '
                f'(sequence has {len(self.sequence)} frames)'
            )
        self.positions = range(self.config.start_index, end)
        self.masks = MaskFolder(cfg.masks_dir) if cfg.masks_dir else None
        self.masks_missing = 0
        self.alignment = (
            estimate_gravity_alignment(self.sequence)
            if self.config.gravity_alignment == 'auto'
            else identity_alignment('gravity_alignment parameter is none')
        )
        self.get_logger().info(
            f'{self.sequence.layout} sequence {self.config.data_dir}: {len(self.positions)} frames to play; '
            f'odom frame: {self.alignment.method}; T_odom_world = {self.alignment.T_map_world.round(5).tolist()}'
        )

        qos = reliable(10)
        self.color_pub = self.create_publisher(Image, 'camera/color/image_raw', qos)
        self.depth_pub = self.create_publisher(Image, 'camera/depth/image_raw', qos)
        self.info_pub = self.create_publisher(CameraInfo, 'camera/color/camera_info', qos)
        self.odom_pub = self.create_publisher(Odometry, 'odom', qos)
        self.data_publishers = (self.color_pub, self.depth_pub, self.info_pub, self.odom_pub)
        self.masks_pub = self.create_publisher(Image, 'masks', qos) if self.masks is not None else None
        self.clock_pub = self.create_publisher(Clock, '/clock', 10) if self.config.publish_clock else None
        self.alignment_pub = self.create_publisher(TransformStamped, '~/dataset_alignment', LATCHED)
        self.step_service = None
        if self.config.playback_mode == 'stepped':
            self.step_service = self.create_service(Trigger, '~/step', self._on_step)
        self.tf_broadcaster = None
        if self.config.publish_tf and TransformBroadcaster is not None:
            self.tf_broadcaster = TransformBroadcaster(self)
            self._broadcast_static_tf(StaticTransformBroadcaster(self))

        self.next_position = 0
        self.loop_count = 0
        self.start_time_s = None
        self.published = 0
        self.skipped = 0
        self.first_timestamp_s = self.sequence.timestamp_s(self.positions[0])
        last_timestamp_s = self.sequence.timestamp_s(self.positions[-1])
        self.loop_duration_s = last_timestamp_s - self.first_timestamp_s + 1.0 / self.config.rate_hz

    def _broadcast_static_tf(self, broadcaster):
        static = TransformStamped()
        static.header.stamp = self.get_clock().now().to_msg()
        static.header.frame_id = self.config.base_frame
        static.child_frame_id = self.config.optical_frame
        static.transform = transform_to_msg(invert_transform(T_OPTICAL_BASE))
        broadcaster.sendTransform(static)

    def publish_alignment(self):
        msg = TransformStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.config.odom_frame
        msg.child_frame_id = 'dataset_world'
        msg.transform = transform_to_msg(self.alignment.T_map_world)
        self.alignment_pub.publish(msg)

    @property
    def finished(self) -> bool:
        return self.next_position >= len(self.positions) and not self.config.loop

    def due_time_s(self) -> float:
        """Node-clock time (seconds) at which the next frame is due in realtime mode."""
        position = self.positions[self.next_position % len(self.positions)]
        offset = self.sequence.timestamp_s(position) - self.first_timestamp_s + self.loop_count * self.loop_duration_s
        return self.start_time_s + offset / self.config.playback_speed

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def publish_next(self) -> str:
        """Publish the next frame (skipping unreadable ones); return a one-line description."""
        if self.start_time_s is None:
            self.start_time_s = self.now_s()
        if self.next_position >= len(self.positions):
            if not self.config.loop:
                return 'end of sequence'
            self.next_position = 0
            self.loop_count += 1
            self.get_logger().info(f'looping: start of loop {self.loop_count + 1}')
        position = self.positions[self.next_position]
        self.next_position += 1
        try:
            frame = self.sequence.load(position)
        except FrameError as error:
            self.skipped += 1
            self.get_logger().warning(f'skipping frame at position {position}: {error}')
            return f'skipped frame at position {position}: {error}'
        offset = frame.timestamp_s - self.first_timestamp_s + self.loop_count * self.loop_duration_s
        origin_s = self.first_timestamp_s if self.config.stamps == 'recorded' else self.start_time_s
        stamp = time_to_msg(origin_s + offset)
        if self.clock_pub is not None:
            self.clock_pub.publish(Clock(clock=stamp))
        self._publish_frame(frame, stamp)
        self.published += 1
        return f'published frame {frame.index} (position {position})'

    def _publish_frame(self, frame, stamp):
        cfg = self.config
        if cfg.depth_encoding == '16UC1':  # the sensor's own image when it is in millimetres
            depth = depth_to_millimetres(frame.depth, frame.depth_scale)
        else:
            depth_m = frame.depth_m  # computed from the sensor's image: once
            depth = np.where(depth_m > 0, depth_m, np.float32(np.nan))
        T_odom_base = self.alignment.T_map_world @ frame.T_world_camera @ T_OPTICAL_BASE
        odom = Odometry()
        odom.header.stamp = stamp
        odom.header.frame_id = cfg.odom_frame
        odom.child_frame_id = cfg.base_frame
        odom.pose.pose = transform_to_pose(T_odom_base)
        self.color_pub.publish(numpy_to_image(frame.color, 'rgb8', stamp, cfg.optical_frame))
        self.depth_pub.publish(numpy_to_image(depth, cfg.depth_encoding, stamp, cfg.optical_frame))
        self.info_pub.publish(intrinsics_to_camera_info(self.sequence.intrinsics, stamp, cfg.optical_frame))
        self.odom_pub.publish(odom)
        if self.masks is not None:
            self._publish_masks(frame, stamp)
        if self.tf_broadcaster is not None:
            tf = TransformStamped()
            tf.header = odom.header
            tf.child_frame_id = cfg.base_frame
            tf.transform = transform_to_msg(T_odom_base)
            self.tf_broadcaster.sendTransform(tf)

    def _publish_masks(self, frame, stamp):
        """The frame's masks after its colour image, with its stamp; a missing or bad file is reported, not fatal."""
        assert self.masks is not None and self.masks_pub is not None
        try:
            masks = self.masks.load(frame.index, frame.color.shape[:2])
        except MaskError as error:
            self.get_logger().warning(f'{error}: frame {frame.index} played without masks')
            return
        if masks is None:
            self.masks_missing += 1
            if self.masks_missing == 1:
                self.get_logger().warning(
                    f'no masks for frame {frame.index} in {self.config.masks_dir}: frames without a mask file are '
                    'played without masks (the count at the end)'
                )
            return
        self.masks_pub.publish(numpy_to_image(masks.labels, 'mono16', stamp, self.config.optical_frame))

    def wait_for_acknowledgements(self, timeout_s: float = 5.0) -> bool:
        """Block until reliable subscribers acknowledged everything published."""
        timeout = Duration(seconds=timeout_s)
        return all(pub.wait_for_all_acked(timeout) for pub in self.data_publishers)

    def _on_step(self, request, response):
        if self.finished:
            response.success = False
            response.message = 'end of sequence'
        else:
            response.message = self.publish_next()
            response.success = response.message.startswith('published')
        return response


STEPPED_LINGER_S = 2.0
"""How long a stepped player keeps answering after its last frame."""


def _wait_for_subscribers(node: PlayerNode, executor) -> bool:
    wanted = node.config.wait_for_subscribers
    deadline = time.monotonic() + node.config.wait_for_subscribers_timeout_s
    while (matched := min(pub.get_subscription_count() for pub in node.data_publishers)) < wanted:
        if time.monotonic() > deadline:
            node.get_logger().error(
                f'only {matched} of {wanted} subscribers matched every data topic within '
                f'{node.config.wait_for_subscribers_timeout_s} s'
            )
            return False
        executor.spin_once(timeout_sec=0.05)
    return True


def play(node: PlayerNode, executor) -> int:
    """Run playback to the end (or forever when looping); return the exit code."""
    node.publish_alignment()
    if not _wait_for_subscribers(node, executor):
        return EXIT_FAILED
    mode = node.config.playback_mode
    while rclpy.ok() and not node.finished:
        if mode == 'stepped':
            executor.spin_once(timeout_sec=0.1)
            continue
        if mode == 'realtime' and node.start_time_s is not None:
            while rclpy.ok() and (remaining := node.due_time_s() - node.now_s()) > 0:
                executor.spin_once(timeout_sec=min(remaining, 0.1))
        node.publish_next()
        if mode == 'as_fast_as_possible' and not node.wait_for_acknowledgements():
            node.get_logger().warning('subscribers did not acknowledge a frame within 5 s; going on')
        executor.spin_once(timeout_sec=0)
    if mode != 'stepped':
        # Let late-joining and slow reliable subscribers take the last frames.
        node.wait_for_acknowledgements()
    else:
        # The response to the last ~/step is sent after its callback returns: keep serving a moment so it
        # reaches the caller (later calls are told 'end of sequence').
        node.wait_for_acknowledgements()
        deadline = time.monotonic() + STEPPED_LINGER_S
        while rclpy.ok() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
    masks = f', {node.masks_missing} without masks' if node.masks is not None else ''
    node.get_logger().info(f'done: {node.published} frames published, {node.skipped} skipped{masks}')
    return EXIT_OK if node.published else EXIT_FAILED


def _play(node: PlayerNode) -> int:
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    return play(node, executor)


def main(args=None) -> int:
    return run_node(PlayerNode, _play, args)


if __name__ == '__main__':
    raise SystemExit(main())
