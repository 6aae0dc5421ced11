"""Settings of the player node."""

from __future__ import annotations

from dataclasses import dataclass

from gpt4scene_ros.common.settings.spec import check_settings, setting

PLAYBACK_MODES = ('realtime', 'as_fast_as_possible', 'stepped')
DEPTH_ENCODINGS = ('16UC1', '32FC1')
GRAVITY_ALIGNMENTS = ('auto', 'none')
STAMP_MODES = ('now', 'recorded')


@dataclass(frozen=True)
class PlayerConfig:
    """Settings of the ``player`` node."""

    data_dir: str = setting(
        '',
        'Recorded RGB-D sequence: a ScanNet export, an OpenEQA episode, a Microsoft 7-Scenes or TUM RGB-D folder, or a '
        'rosbag2 bag (MCAP or sqlite3; a .mcap/.db3 file or a bag folder).',
        read_only=True,
    )
    masks_dir: str = setting(
        '',
        'Optional folder of instance masks per frame (frame-XXXXXX.mask.png, 8- or 16-bit labels, 0 = none), '
        'published on masks (mono16) with the colour stamp; empty: none.',
        read_only=True,
    )
    color_topic: str = setting(
        '/camera/color/image_raw',
        'Bags: topic of the colour images (sensor_msgs/Image or CompressedImage).',
        read_only=True,
    )
    depth_topic: str = setting(
        '/camera/depth/image_raw',
        'Bags: topic of the depth images registered to colour (16UC1 mm or 32FC1 m).',
        read_only=True,
    )
    camera_info_topic: str = setting(
        '/camera/color/camera_info', 'Bags: topic of the colour CameraInfo.', read_only=True
    )
    odometry_topic: str = setting(
        '/odom', 'Bags: topic of the camera body pose (nav_msgs/Odometry or geometry_msgs/PoseStamped).', read_only=True
    )
    stamps: str = setting(
        'now',
        'now: stamp frames from the node clock at playback; recorded: keep the '
        'recorded stamps (bags, TUM), plus the loop offset.',
        choices=STAMP_MODES,
        read_only=True,
    )
    publish_clock: bool = setting(
        False,
        "Publish /clock (rosgraph_msgs/Clock) at each frame's stamp, for nodes "
        'with use_sim_time (with stamps=recorded: the recorded time).',
        read_only=True,
    )
    playback_mode: str = setting(
        'realtime',
        'realtime: frames at their recorded times; as_fast_as_possible: next frame once every '
        'reliable subscriber acknowledged the last; stepped: one frame per ~/step service call.',
        choices=PLAYBACK_MODES,
        read_only=True,
    )
    rate_hz: float = setting(
        30.0, 'Frame rate of sequences without timestamps (7-Scenes), Hz.', minimum=0.1, maximum=1000.0, read_only=True
    )
    playback_speed: float = setting(
        1.0, 'Multiplier of recorded time in realtime mode.', minimum=0.01, maximum=100.0, read_only=True
    )
    loop: bool = setting(False, 'Start over at the end; stamps keep increasing across loops.', read_only=True)
    start_index: int = setting(0, 'First frame (position in the sequence) to play.', minimum=0, read_only=True)
    max_frames: int = setting(0, 'Frames to play per loop; 0 = all.', minimum=0, read_only=True)
    depth_encoding: str = setting(
        '16UC1',
        'Depth image encoding: 16UC1 millimetres (0 = invalid) or 32FC1 metres (NaN = invalid, REP 118).',
        choices=DEPTH_ENCODINGS,
        read_only=True,
    )
    gravity_alignment: str = setting(
        'auto',
        'auto: estimate a z-up odometry frame from the dominant horizontal planes of the data; '
        'none: use the dataset world frame as is.',
        choices=GRAVITY_ALIGNMENTS,
        read_only=True,
    )
    odom_frame: str = setting('odom', 'Frame of the odometry and of the gravity-aligned world.', read_only=True)
    base_frame: str = setting(
        'camera_link',
        'Body frame (x forward, z up) moving with the camera; child frame of the odometry.',
        read_only=True,
    )
    optical_frame: str = setting(
        'camera_color_optical_frame',
        'Optical frame (z forward, y down) of the colour and depth images.',
        read_only=True,
    )
    wait_for_subscribers: int = setting(
        0, 'Wait until this many subscribers match each data topic before playing.', minimum=0, read_only=True
    )
    wait_for_subscribers_timeout_s: float = setting(
        30.0, 'Give up waiting for subscribers after this long (exit code 1).', minimum=0.0, read_only=True
    )
    publish_tf: bool = setting(
        True, 'Broadcast odom -> base -> optical TF (when tf2_ros is installed).', read_only=True
    )

    def __post_init__(self) -> None:
        check_settings(self)
