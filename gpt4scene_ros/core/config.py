"""Validated, typed configuration for every node.

Each setting is one dataclass field with a default and a description (the
description becomes the ROS parameter descriptor); units are in the names.
``__post_init__`` checks values and raises ValueError naming the parameter,
its value and the rule, so a bad launch configuration fails at start-up.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any


def setting(default: Any, description: str, *, choices: tuple = (), minimum: float | None = None,
            maximum: float | None = None, greater_than: float | None = None, less_than: float | None = None,
            read_only: bool = False):
    """A dataclass field carrying its description and validation rules.

    ``minimum``/``maximum`` are inclusive bounds, ``greater_than``/``less_than`` exclusive ones.
    """
    return field(default=default, metadata={
        'description': description, 'choices': tuple(choices), 'minimum': minimum,
        'maximum': maximum, 'greater_than': greater_than, 'less_than': less_than, 'read_only': read_only})


def check_settings(config) -> None:
    """Validate every field of a settings dataclass against its metadata."""
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        rules = spec.metadata
        where = f'{type(config).__name__}.{spec.name}={value!r}'
        expected_type = type(spec.default)
        if expected_type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
            object.__setattr__(config, spec.name, value)
        if expected_type is tuple and isinstance(value, (list, tuple)):
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
                raise ValueError(f'{where}: expected finite numbers')
            value = tuple(float(v) for v in value)
            object.__setattr__(config, spec.name, value)
        if type(value) is not expected_type:
            raise ValueError(f'{where}: expected {expected_type.__name__}')
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f'{where}: must be finite')
        if rules.get('choices') and value not in rules['choices']:
            raise ValueError(f'{where}: must be one of {list(rules["choices"])}')
        if rules.get('minimum') is not None and value < rules['minimum']:
            raise ValueError(f'{where}: must be >= {rules["minimum"]}')
        if rules.get('maximum') is not None and value > rules['maximum']:
            raise ValueError(f'{where}: must be <= {rules["maximum"]}')
        if rules.get('greater_than') is not None and value <= rules['greater_than']:
            raise ValueError(f'{where}: must be > {rules["greater_than"]}')
        if rules.get('less_than') is not None and value >= rules['less_than']:
            raise ValueError(f'{where}: must be < {rules["less_than"]}')


PLAYBACK_MODES = ('realtime', 'as_fast_as_possible', 'stepped')
DEPTH_ENCODINGS = ('16UC1', '32FC1')
GRAVITY_ALIGNMENTS = ('auto', 'none')


@dataclass(frozen=True)
class PlayerConfig:
    """Settings of the ``player`` node."""

    data_dir: str = setting('', 'Folder of a recorded RGB-D sequence (Microsoft 7-Scenes or TUM RGB-D layout).',
                            read_only=True)
    playback_mode: str = setting(
        'realtime', 'realtime: frames at their recorded times; as_fast_as_possible: next frame once every '
        'reliable subscriber acknowledged the last; stepped: one frame per ~/step service call.',
        choices=PLAYBACK_MODES, read_only=True)
    rate_hz: float = setting(30.0, 'Frame rate of sequences without timestamps (7-Scenes), Hz.',
                             minimum=0.1, maximum=1000.0, read_only=True)
    playback_speed: float = setting(1.0, 'Multiplier of recorded time in realtime mode.',
                                    minimum=0.01, maximum=100.0, read_only=True)
    loop: bool = setting(False, 'Start over at the end; stamps keep increasing across loops.', read_only=True)
    start_index: int = setting(0, 'First frame (position in the sequence) to play.', minimum=0, read_only=True)
    max_frames: int = setting(0, 'Frames to play per loop; 0 = all.', minimum=0, read_only=True)
    depth_encoding: str = setting('16UC1', 'Depth image encoding: 16UC1 millimetres (0 = invalid) or 32FC1 '
                                  'metres (NaN = invalid, REP 118).', choices=DEPTH_ENCODINGS, read_only=True)
    gravity_alignment: str = setting(
        'auto', 'auto: estimate a z-up odometry frame from the dominant horizontal planes of the data; '
        'none: use the dataset world frame as is.', choices=GRAVITY_ALIGNMENTS, read_only=True)
    odom_frame: str = setting('odom', 'Frame of the odometry and of the gravity-aligned world.', read_only=True)
    base_frame: str = setting('camera_link', 'Body frame (x forward, z up) moving with the camera; '
                              'child frame of the odometry.', read_only=True)
    optical_frame: str = setting('camera_color_optical_frame', 'Optical frame (z forward, y down) of the '
                                 'colour and depth images.', read_only=True)
    wait_for_subscribers: int = setting(0, 'Wait until this many subscribers match each data topic before '
                                        'playing.', minimum=0, read_only=True)
    wait_for_subscribers_timeout_s: float = setting(30.0, 'Give up waiting for subscribers after this long '
                                                    '(exit code 1).', minimum=0.0, read_only=True)
    publish_tf: bool = setting(True, 'Broadcast odom -> base -> optical TF (when tf2_ros is installed).',
                               read_only=True)

    def __post_init__(self):
        check_settings(self)


QUERY_TASKS = ('qa', 'ground', 'multi_ground', 'caption', 'objects')


@dataclass(frozen=True)
class QueryConfig:
    """Settings of the ``query_node``."""

    max_question_chars: int = setting(4000, 'Longest question accepted, in characters.', minimum=1,
                                      read_only=True)
    max_object_ids: int = setting(256, 'Most object ids accepted in one request.', minimum=1, read_only=True)
    default_num_frames: int = setting(8, 'Keyframes given to the model when a request asks for 0.', minimum=1,
                                      maximum=64, read_only=True)
    max_num_frames: int = setting(32, 'Most keyframes a request may ask for.', minimum=1, maximum=256,
                                  read_only=True)

    def __post_init__(self):
        check_settings(self)
        if self.default_num_frames > self.max_num_frames:
            raise ValueError(f'QueryConfig.default_num_frames={self.default_num_frames}: must be <= '
                             f'max_num_frames={self.max_num_frames}')


MAP_DEVICES = ('auto', 'CPU:0', 'CUDA:0')
INPUT_QOS = ('sensor_data', 'reliable')


@dataclass(frozen=True)
class MappingConfig:
    """Settings of the TSDF map (:class:`gpt4scene_ros.core.mapping.SceneMap`) and the ``mapping_node``."""

    device: str = setting('auto', 'Open3D device of the voxel grid; auto picks CUDA:0 when Open3D has CUDA.',
                          choices=MAP_DEVICES, read_only=True)
    voxel_size_m: float = setting(0.02, 'TSDF voxel edge length, metres.', minimum=0.002, maximum=0.5,
                                  read_only=True)
    truncation_voxels: float = setting(4.0, 'TSDF truncation distance, in voxels.', minimum=1.0, maximum=32.0,
                                       read_only=True)
    block_resolution: int = setting(8, 'Voxels along each edge of a hashed voxel block.', choices=(4, 8, 16),
                                    read_only=True)
    initial_block_count: int = setting(10000, 'Voxel blocks allocated at start; the hash grows on demand.',
                                       minimum=100, maximum=10_000_000, read_only=True)
    max_block_count: int = setting(
        400000, 'Most voxel blocks the map may hold; a frame that would exceed it is refused with a warning '
        '(bounds memory: one 8^3 block of tsdf+weight+colour is 10 KB).', minimum=100, maximum=50_000_000,
        read_only=True)
    depth_min_m: float = setting(0.2, 'Depth below this is ignored, metres.', minimum=0.0, maximum=10.0,
                                 read_only=True)
    depth_max_m: float = setting(3.5, 'Depth beyond this is ignored, metres.', greater_than=0.0, maximum=20.0,
                                 read_only=True)
    integration_stride: int = setting(1, 'Integrate every n-th synchronised frame.', minimum=1, maximum=1000,
                                      read_only=True)
    min_translation_m: float = setting(0.0, 'Skip a frame unless the camera moved this far since the last '
                                       'integrated one (0 = off), metres.', minimum=0.0, maximum=10.0,
                                       read_only=True)
    min_rotation_deg: float = setting(0.0, 'Skip a frame unless the camera turned this much since the last '
                                      'integrated one (0 = off), degrees; a frame passes if it moved or turned '
                                      'enough.', minimum=0.0, maximum=180.0, read_only=True)
    weight_threshold: float = setting(3.0, 'Voxels observed fewer times than this are left out of the cloud, '
                                      'mesh and BEV.', minimum=0.0, maximum=1000.0, read_only=True)
    bev_size_px: int = setting(512, 'Longest side of the bird\'s-eye view, pixels (GPT4Scene uses 512).',
                               minimum=32, maximum=8192, read_only=True)
    bev_max_height_m: float = setting(1.9, 'Surfaces above this height (map z) are cut away in the BEV '
                                      '(the ceiling), metres.', minimum=-10.0, maximum=100.0, read_only=True)
    bev_margin_m: float = setting(0.1, 'Border around the mapped area in the BEV, metres.', minimum=0.0,
                                  maximum=10.0, read_only=True)

    def __post_init__(self):
        check_settings(self)
        if self.depth_max_m <= self.depth_min_m:
            raise ValueError(f'MappingConfig.depth_max_m={self.depth_max_m}: must be > depth_min_m='
                             f'{self.depth_min_m}')
        if self.initial_block_count > self.max_block_count:
            raise ValueError(f'MappingConfig.initial_block_count={self.initial_block_count}: must be <= '
                             f'max_block_count={self.max_block_count}')


@dataclass(frozen=True)
class MappingNodeConfig:
    """Settings of the ``mapping_node`` around the map: inputs, timing and outputs."""

    input_qos: str = setting('sensor_data', 'QoS of the image, camera info and odometry subscriptions: '
                             'sensor_data (best effort) or reliable.', choices=INPUT_QOS, read_only=True)
    input_history_depth: int = setting(10, 'Messages each input subscription keeps until the node takes them; '
                                       'older ones are lost when the node falls behind.', minimum=1,
                                       maximum=10000, read_only=True)
    sync_slop_s: float = setting(0.02, 'Largest stamp difference between colour, depth and camera info '
                                 'accepted as one frame, seconds.', greater_than=0.0, maximum=1.0, read_only=True)
    sync_queue_size: int = setting(10, 'Messages kept per input while synchronising.', minimum=1, maximum=1000,
                                   read_only=True)
    frame_queue_size: int = setting(4, 'Synchronised frames waiting for integration; the oldest is dropped '
                                    'when full.', minimum=1, maximum=1000, read_only=True)
    odom_buffer_s: float = setting(10.0, 'Odometry history kept for interpolation, seconds.', greater_than=0.0,
                                   maximum=600.0, read_only=True)
    odom_max_gap_s: float = setting(0.25, 'A frame whose stamp falls between odometry messages further apart '
                                    'than this is dropped, seconds.', greater_than=0.0, maximum=10.0,
                                    read_only=True)
    odom_wait_s: float = setting(0.5, 'How long a frame newer than the latest odometry waits for it, seconds.',
                                 minimum=0.0, maximum=10.0, read_only=True)
    base_to_optical_translation_m: tuple = setting(
        (0.0, 0.0, 0.0), 'Camera optical frame origin in the odometry child (base) frame [x, y, z], metres; '
        'used when use_tf is false or tf2_ros is not installed.', read_only=True)
    base_to_optical_rotation_xyzw: tuple = setting(
        (-0.5, 0.5, -0.5, 0.5), 'Rotation of the optical frame (z forward, y down) in the base frame as a '
        'quaternion [x, y, z, w]; the default is the REP-103 camera_link -> optical rotation.', read_only=True)
    use_tf: bool = setting(False, 'Look the camera pose on the robot up in TF (needs tf2_ros) instead of the '
                           'two parameters above.', read_only=True)
    tick_period_s: float = setting(0.01, 'Period of the timer that integrates queued frames, retries '
                                   'frames waiting for odometry and publishes due outputs, seconds.',
                                   greater_than=0.0, maximum=1.0, read_only=True)
    bev_period_s: float = setting(1.0, 'Publish the BEV this often when the map changed, seconds.',
                                  greater_than=0.0, maximum=3600.0, read_only=True)
    cloud_period_s: float = setting(2.0, 'Publish ~/map_cloud this often when the map changed, seconds.',
                                    greater_than=0.0, maximum=3600.0, read_only=True)
    mesh_period_s: float = setting(5.0, 'Publish ~/mesh this often when the map changed, seconds.',
                                   greater_than=0.0, maximum=3600.0, read_only=True)
    mesh_max_triangles: int = setting(100000, 'Larger meshes are simplified (vertex clustering) before '
                                      'publishing: RViz markers cost about 3 us per vertex to build.',
                                      minimum=100, maximum=10_000_000, read_only=True)
    diagnostics_period_s: float = setting(1.0, 'Publish /diagnostics this often, seconds.', greater_than=0.0,
                                          maximum=3600.0, read_only=True)

    def __post_init__(self):
        check_settings(self)
        if len(self.base_to_optical_translation_m) != 3:
            raise ValueError(f'MappingNodeConfig.base_to_optical_translation_m={self.base_to_optical_translation_m}'
                             ': must have 3 numbers')
        if len(self.base_to_optical_rotation_xyzw) != 4:
            raise ValueError(f'MappingNodeConfig.base_to_optical_rotation_xyzw={self.base_to_optical_rotation_xyzw}'
                             ': must have 4 numbers')
