"""rosbag2 bags (MCAP and sqlite3) as RGB-D sequences, read and written with ``rosbags`` (pure Python, no ROS).

A bag plays like a recorded folder: :class:`BagSequence` has the
:class:`~gpt4scene_ros.io.sequence.RgbdSequence` interface (``len``,
``timestamp_s``, ``load``), so the player and ``gpt4scene-process`` take either.
A frame is a colour message (``sensor_msgs/Image`` or ``CompressedImage``) with
the depth image nearest in stamp (``16UC1`` millimetres or ``32FC1`` metres),
the intrinsics of the first ``CameraInfo`` and the camera pose from odometry
(``nav_msgs/Odometry`` or ``geometry_msgs/PoseStamped``) interpolated at the
colour stamp. The odometry's child frame is turned into the colour image's
optical frame by ``/tf_static`` when the bag has that transform, else by the
REP 103 optical rotation (what the player and the mapping node assume).

Opening reads the whole bag once for stamps (the images are decoded only when
loaded); ``load`` reads one frame by its recorded time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gpt4scene_ros.common.frames import CameraIntrinsics, RgbdFrame, depth_to_millimetres
from gpt4scene_ros.common.pose_buffer import PoseBuffer, PoseLookupError
from gpt4scene_ros.common.transforms import (
    R_BASE_OPTICAL,
    invert_transform,
    make_transform,
    matrix_from_quaternion,
    quaternion_from_matrix,
)
from gpt4scene_ros.io.messages import decode_color, decode_depth
from gpt4scene_ros.io.sequence import FrameError, RgbdSequence, SequenceError, checked_position

if TYPE_CHECKING:
    from rosbags.interfaces import Connection

logger = logging.getLogger(__name__)

BAG_FILE_SUFFIXES = ('.mcap', '.db3')
COLOR_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
DEPTH_TYPES = ('sensor_msgs/msg/Image',)
CAMERA_INFO_TYPES = ('sensor_msgs/msg/CameraInfo',)
POSE_TYPES = ('nav_msgs/msg/Odometry', 'geometry_msgs/msg/PoseStamped')
MAX_POSE_GAP_S = 0.25
T_OPTICAL_IN_BASE = make_transform(R_BASE_OPTICAL, np.zeros(3))
"""Pose of the optical frame (z forward) in a REP 103 body frame (x forward), as the mapping node assumes."""


@dataclass(frozen=True)
class BagTopics:
    """Topics of the bag to read; the defaults are the names this package's nodes use."""

    color: str = '/camera/color/image_raw'
    depth: str = '/camera/depth/image_raw'
    camera_info: str = '/camera/color/camera_info'
    odometry: str = '/odom'

    def __post_init__(self) -> None:
        for name in ('color', 'depth', 'camera_info', 'odometry'):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f'BagTopics.{name} must be a topic name, got {value!r}')
            if not value.startswith('/'):
                object.__setattr__(self, name, '/' + value)


def is_bag(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like a rosbag2 bag: a ``.mcap``/``.db3`` file or a folder with ``metadata.yaml``."""
    path = Path(path).expanduser()
    if path.is_file():
        return path.suffix in BAG_FILE_SUFFIXES
    return path.is_dir() and (path / 'metadata.yaml').is_file()


def _stamp_s(header: Any) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def _transform_of(translation: Any, rotation: Any) -> np.ndarray:
    q = np.array([rotation.x, rotation.y, rotation.z, rotation.w], dtype=np.float64)
    norm = float(np.linalg.norm(q))
    if not np.isfinite(norm) or norm < 1e-6:
        raise ValueError(f'quaternion {q.tolist()} is not a rotation')
    return make_transform(matrix_from_quaternion(q / norm), [translation.x, translation.y, translation.z])


@dataclass(frozen=True)
class _BagFrame:
    number: int
    timestamp_s: float
    color_time_ns: int
    depth_time_ns: int


class BagSequence(RgbdSequence):
    """A rosbag2 bag as an RGB-D sequence; raises :class:`SequenceError` when it cannot be played."""

    layout = 'rosbag2'

    def __init__(
        self, path: str | os.PathLike[str], topics: BagTopics = BagTopics(), sync_tolerance_s: float = 0.02
    ) -> None:
        from rosbags.highlevel import AnyReader  # imported here: only bag users need it

        self.root = Path(path).expanduser()
        self.topics = topics
        if not self.root.exists():
            raise SequenceError(f'{self.root}: bag does not exist')
        self._paths = [self.root]
        try:
            self._reader = AnyReader(self._paths)
            self._reader.open()
        except Exception as error:  # rosbags raises its own errors, KeyError and struct errors on a broken file
            raise SequenceError(f'{self.root}: cannot open the bag ({type(error).__name__}: {error})') from None
        try:
            self._connections = self._pick_connections()
            self._index(sync_tolerance_s)
        except SequenceError:
            self._reader.close()
            raise
        except Exception as error:
            self._reader.close()
            raise SequenceError(
                f'{self.root}: the bag is unreadable, truncated or corrupt ({type(error).__name__}: {error})'
            ) from None

    def __len__(self) -> int:
        return len(self._frames)

    def close(self) -> None:
        self._reader.close()

    def timestamp_s(self, i: int) -> float:
        return self._frame(i).timestamp_s

    # -- opening ----------------------------------------------------------------------------------

    def _pick_connections(self) -> dict[str, list[Connection]]:
        by_topic: dict[str, list[Connection]] = {}
        for connection in self._reader.connections:
            by_topic.setdefault(connection.topic, []).append(connection)
        listing = ', '.join(f'{topic} ({conns[0].msgtype})' for topic, conns in sorted(by_topic.items())) or 'none'
        picked: dict[str, list[Connection]] = {}
        for role, allowed in (
            ('color', COLOR_TYPES),
            ('depth', DEPTH_TYPES),
            ('camera_info', CAMERA_INFO_TYPES),
            ('odometry', POSE_TYPES),
        ):
            topic = getattr(self.topics, role)
            connections = by_topic.get(topic)
            if not connections:
                raise SequenceError(
                    f'{self.root}: no {role} topic {topic} in the bag (set the {role} topic '
                    f'parameter); its topics: {listing}'
                )
            msgtype = connections[0].msgtype
            if msgtype not in allowed:
                raise SequenceError(
                    f'{self.root}: topic {topic} has message type {msgtype}; the {role} topic '
                    f'must be one of {", ".join(allowed)}'
                )
            picked[role] = connections
        picked['tf_static'] = [c for c in by_topic.get('/tf_static', []) if c.msgtype == 'tf2_msgs/msg/TFMessage']
        return picked

    def _index(self, sync_tolerance_s: float) -> None:
        conns = self._connections
        color_times, depth_times, odometry, static = [], [], [], []
        info = None
        color_frame = odometry_child = ''
        wanted = [c for role in ('color', 'depth', 'camera_info', 'odometry', 'tf_static') for c in conns[role]]
        role_of = {
            id(c): role for role in ('color', 'depth', 'camera_info', 'odometry', 'tf_static') for c in conns[role]
        }
        for connection, time_ns, raw in self._reader.messages(connections=wanted):
            role = role_of[id(connection)]
            if role == 'camera_info' and info is not None:
                continue
            try:
                msg: Any = self._reader.deserialize(raw, connection.msgtype)  # a message class made at run time
            except Exception as error:
                raise SequenceError(
                    f'{self.root}: a {connection.msgtype} message on {connection.topic} does not '
                    f'decode ({type(error).__name__}: {error})'
                ) from None
            if role == 'color':
                color_times.append((_stamp_s(msg.header), time_ns))
                color_frame = color_frame or msg.header.frame_id
            elif role == 'depth':
                depth_times.append((_stamp_s(msg.header), time_ns))
            elif role == 'camera_info':
                info = msg
            elif role == 'odometry':
                pose = msg.pose.pose if connection.msgtype == 'nav_msgs/msg/Odometry' else msg.pose
                odometry.append((_stamp_s(msg.header), pose))
                odometry_child = odometry_child or getattr(msg, 'child_frame_id', '')
            else:
                static.extend(msg.transforms)
        for role, times in (('color', color_times), ('depth', depth_times), ('odometry', odometry)):
            if not times:
                raise SequenceError(f'{self.root}: topic {getattr(self.topics, role)} holds no messages')
        if info is None:
            raise SequenceError(f'{self.root}: topic {self.topics.camera_info} holds no messages')
        try:
            self.intrinsics = CameraIntrinsics.from_matrix(
                np.asarray(info.k).reshape(3, 3), int(info.width), int(info.height)
            )
        except ValueError as error:
            raise SequenceError(f'{self.root}: camera_info on {self.topics.camera_info}: {error}') from None
        self.T_base_optical = self._base_to_optical(static, odometry_child, color_frame)
        self._poses = PoseBuffer(max_age_s=1e9, max_gap_s=MAX_POSE_GAP_S)
        bad_poses = 0
        for stamp_s, pose in sorted(odometry, key=lambda item: item[0]):
            try:
                self._poses.add(stamp_s, _transform_of(pose.position, pose.orientation))
            except ValueError:
                bad_poses += 1
        if bad_poses:
            logger.warning('%s: %d odometry poses are not rigid transforms and were left out', self.root, bad_poses)
        depth_times.sort()
        depth_stamps = np.array([stamp for stamp, _ in depth_times])
        self._frames: list[_BagFrame] = []
        unmatched = 0
        for stamp_s, time_ns in sorted(color_times):
            k = int(np.argmin(np.abs(depth_stamps - stamp_s)))
            if abs(depth_stamps[k] - stamp_s) > sync_tolerance_s:
                unmatched += 1
                continue
            self._frames.append(_BagFrame(len(self._frames), stamp_s, time_ns, depth_times[k][1]))
        if not self._frames:
            raise SequenceError(
                f'{self.root}: no colour image on {self.topics.color} has a depth image on '
                f'{self.topics.depth} within {sync_tolerance_s} s of its stamp'
            )
        if unmatched:
            logger.warning(
                '%s: %d colour images have no depth image within %.3f s and are left out',
                self.root,
                unmatched,
                sync_tolerance_s,
            )

    def _base_to_optical(self, static: list[Any], base_frame: str, optical_frame: str) -> np.ndarray:
        """Pose of the optical frame in the odometry's child frame, walking ``/tf_static`` when it links them."""
        if base_frame and base_frame == optical_frame:
            return np.eye(4)
        parent_of = {t.child_frame_id: t for t in static}
        chain, frame = np.eye(4), optical_frame
        for _ in range(len(parent_of) + 1):
            if frame == base_frame:
                return chain
            transform = parent_of.get(frame)
            if transform is None:
                break
            chain = _transform_of(transform.transform.translation, transform.transform.rotation) @ chain
            frame = transform.header.frame_id
        return T_OPTICAL_IN_BASE.copy()

    # -- frames -----------------------------------------------------------------------------------

    def _frame(self, i: int) -> _BagFrame:
        return self._frames[checked_position(i, len(self._frames), self.root)]

    def _message_at(self, role: str, time_ns: int) -> tuple[Connection, Any]:
        try:
            for connection, _, raw in self._reader.messages(
                connections=self._connections[role], start=time_ns, stop=time_ns + 1
            ):
                return connection, self._reader.deserialize(raw, connection.msgtype)
        except Exception as error:
            raise FrameError(
                f'{self.root}: cannot read the {role} message recorded at {time_ns} ns '
                f'({type(error).__name__}: {error})'
            ) from None
        raise FrameError(f'{self.root}: the {role} message recorded at {time_ns} ns is gone')

    def load(self, i: int) -> RgbdFrame:
        """Read the frame at position ``i``; raises FrameError saying what is wrong with it."""
        record = self._frame(i)
        connection, color_msg = self._message_at('color', record.color_time_ns)
        _, depth_msg = self._message_at('depth', record.depth_time_ns)
        try:
            color = decode_color(color_msg, connection.msgtype)
        except ValueError as error:
            raise FrameError(f'{self.topics.color}: {error}') from None
        try:
            depth, depth_scale = decode_depth(depth_msg)
        except ValueError as error:
            raise FrameError(f'{self.topics.depth}: {error}') from None
        if depth.shape != color.shape[:2]:
            raise FrameError(
                f'{self.root}: frame {i}: depth {depth.shape[1]}x{depth.shape[0]} and colour '
                f'{color.shape[1]}x{color.shape[0]} differ in size (record aligned depth)'
            )
        try:
            T_odom_base = self._poses.lookup(record.timestamp_s)
        except PoseLookupError as error:
            raise FrameError(f'{self.root}: frame {i}: no odometry pose on {self.topics.odometry}: {error}') from None
        return RgbdFrame(
            index=record.number,
            timestamp_s=record.timestamp_s,
            color=color,
            depth=depth,
            T_world_camera=T_odom_base @ self.T_base_optical,
            depth_scale=depth_scale,
        )


# -- writing ------------------------------------------------------------------------------------

BAG_EPOCH_S = 1_700_000_000.0
"""Stamps of written bags start here (sequence time 0), so they look like a robot's wall-clock stamps."""


def write_bag(
    sequence: RgbdSequence,
    path: str | os.PathLike[str],
    *,
    storage: str = 'mcap',
    topics: BagTopics = BagTopics(),
    max_frames: int = 0,
    base_frame: str = 'camera_link',
    optical_frame: str = 'camera_color_optical_frame',
    odom_frame: str = 'odom',
) -> int:
    """Record ``sequence`` (a folder sequence or a bag) as a rosbag2 bag in folder ``path``; return its frames.

    Colour ``rgb8``, depth ``16UC1``, camera info, odometry of ``base_frame``
    (the optical frame turned by REP 103) and ``/tf_static`` base -> optical,
    stamped ``BAG_EPOCH_S`` + the sequence time, as a RealSense driver would.
    Frames that do not load are left out (and logged).
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    if storage not in ('mcap', 'sqlite3'):
        raise ValueError(f"storage must be 'mcap' or 'sqlite3', got {storage!r}")
    typestore = get_typestore(Stores.ROS2_HUMBLE)
    types = typestore.types
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    count = len(sequence) if max_frames <= 0 else min(len(sequence), max_frames)
    T_optical_base = invert_transform(T_OPTICAL_IN_BASE)
    k = sequence.intrinsics

    def header(stamp_s: float, frame_id: str) -> Any:
        sec = int(np.floor(stamp_s))
        return types['std_msgs/msg/Header'](
            stamp=types['builtin_interfaces/msg/Time'](
                sec=sec, nanosec=int(round((stamp_s - sec) * 1e9)) % 1_000_000_000
            ),
            frame_id=frame_id,
        )

    def vector(xyz: Sequence[float] | np.ndarray, kind: str = 'geometry_msgs/msg/Vector3') -> Any:
        return types[kind](x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))

    def quaternion(R: np.ndarray) -> Any:
        q = quaternion_from_matrix(R)
        return types['geometry_msgs/msg/Quaternion'](x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))

    written = 0
    with Writer(Path(path), version=8, storage_plugin=plugin) as writer:
        conn = {
            role: writer.add_connection(getattr(topics, role), msgtype, typestore=typestore)
            for role, msgtype in (
                ('color', 'sensor_msgs/msg/Image'),
                ('depth', 'sensor_msgs/msg/Image'),
                ('camera_info', 'sensor_msgs/msg/CameraInfo'),
                ('odometry', 'nav_msgs/msg/Odometry'),
            )
        }
        tf_static = writer.add_connection('/tf_static', 'tf2_msgs/msg/TFMessage', typestore=typestore)
        first_s = sequence.timestamp_s(0) if len(sequence) else 0.0

        def write(connection: Connection, msg: Any, stamp_s: float) -> None:
            writer.write(connection, int(round(stamp_s * 1e9)), bytes(typestore.serialize_cdr(msg, connection.msgtype)))

        static = types['geometry_msgs/msg/TransformStamped'](
            header=header(BAG_EPOCH_S, base_frame),
            child_frame_id=optical_frame,
            transform=types['geometry_msgs/msg/Transform'](
                translation=vector(T_OPTICAL_IN_BASE[:3, 3]), rotation=quaternion(T_OPTICAL_IN_BASE[:3, :3])
            ),
        )
        write(tf_static, types['tf2_msgs/msg/TFMessage'](transforms=[static]), BAG_EPOCH_S)
        for i in range(count):
            try:
                frame = sequence.load(i)
            except FrameError as error:
                logger.warning('left out of the bag: %s', error)
                continue
            stamp_s = BAG_EPOCH_S + frame.timestamp_s - first_s
            height, width = frame.depth.shape
            color = np.ascontiguousarray(frame.color, dtype=np.uint8)
            write(
                conn['color'],
                types['sensor_msgs/msg/Image'](
                    header=header(stamp_s, optical_frame),
                    height=height,
                    width=width,
                    encoding='rgb8',
                    is_bigendian=0,
                    step=width * 3,
                    data=color.reshape(-1),
                ),
                stamp_s,
            )
            depth_mm = depth_to_millimetres(frame.depth, frame.depth_scale).astype('<u2', copy=False)
            write(
                conn['depth'],
                types['sensor_msgs/msg/Image'](
                    header=header(stamp_s, optical_frame),
                    height=height,
                    width=width,
                    encoding='16UC1',
                    is_bigendian=0,
                    step=width * 2,
                    data=depth_mm.reshape(-1).view(np.uint8),
                ),
                stamp_s,
            )
            K = np.array([k.fx, 0, k.cx, 0, k.fy, k.cy, 0, 0, 1], dtype=np.float64)
            P = np.array([k.fx, 0, k.cx, 0, 0, k.fy, k.cy, 0, 0, 0, 1, 0], dtype=np.float64)
            roi = types['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
            write(
                conn['camera_info'],
                types['sensor_msgs/msg/CameraInfo'](
                    header=header(stamp_s, optical_frame),
                    height=k.height,
                    width=k.width,
                    distortion_model='plumb_bob',
                    d=np.zeros(5),
                    k=K,
                    r=np.eye(3).reshape(-1),
                    p=P,
                    binning_x=0,
                    binning_y=0,
                    roi=roi,
                ),
                stamp_s,
            )
            T_odom_base = frame.T_world_camera @ T_optical_base
            pose = types['geometry_msgs/msg/Pose'](
                position=vector(T_odom_base[:3, 3], 'geometry_msgs/msg/Point'),
                orientation=quaternion(T_odom_base[:3, :3]),
            )
            twist = types['geometry_msgs/msg/Twist'](linear=vector((0, 0, 0)), angular=vector((0, 0, 0)))
            write(
                conn['odometry'],
                types['nav_msgs/msg/Odometry'](
                    header=header(stamp_s, odom_frame),
                    child_frame_id=base_frame,
                    pose=types['geometry_msgs/msg/PoseWithCovariance'](pose=pose, covariance=np.zeros(36)),
                    twist=types['geometry_msgs/msg/TwistWithCovariance'](twist=twist, covariance=np.zeros(36)),
                ),
                stamp_s,
            )
            written += 1
    return written
