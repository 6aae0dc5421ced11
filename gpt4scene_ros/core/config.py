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
