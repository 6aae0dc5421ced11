"""Settings of the TSDF map and of the mapping node around it."""

from __future__ import annotations

from dataclasses import dataclass

from gpt4scene_ros.common.settings.spec import check_settings, setting

MAP_DEVICES = ('auto', 'CPU:0', 'CUDA:0')
INPUT_QOS = ('sensor_data', 'reliable')


@dataclass(frozen=True)
class MappingConfig:
    """Settings of the TSDF map (:class:`gpt4scene_ros.mapping.tsdf.SceneMap`) and the ``mapping_node``."""

    device: str = setting(
        'auto',
        'Open3D device of the voxel grid; auto picks CUDA:0 when Open3D has CUDA.',
        choices=MAP_DEVICES,
        read_only=True,
    )
    voxel_size_m: float = setting(0.02, 'TSDF voxel edge length, metres.', minimum=0.002, maximum=0.5, read_only=True)
    truncation_voxels: float = setting(
        4.0, 'TSDF truncation distance, in voxels.', minimum=1.0, maximum=32.0, read_only=True
    )
    block_resolution: int = setting(
        8, 'Voxels along each edge of a hashed voxel block.', choices=(4, 8, 16), read_only=True
    )
    initial_block_count: int = setting(
        10000,
        'Voxel blocks allocated at start; the hash grows on demand.',
        minimum=100,
        maximum=10_000_000,
        read_only=True,
    )
    max_block_count: int = setting(
        400000,
        'Most voxel blocks the map may hold; a frame that would exceed it is refused with a warning '
        '(bounds memory: one 8^3 block of tsdf+weight+colour is 10 KB).',
        minimum=100,
        maximum=50_000_000,
        read_only=True,
    )
    depth_min_m: float = setting(0.2, 'Depth below this is ignored, metres.', minimum=0.0, maximum=10.0, read_only=True)
    depth_max_m: float = setting(
        3.5, 'Depth beyond this is ignored, metres.', greater_than=0.0, maximum=20.0, read_only=True
    )
    integration_stride: int = setting(
        1, 'Integrate every n-th synchronised frame.', minimum=1, maximum=1000, read_only=True
    )
    integration_decimation: int = setting(
        0,
        'Integrate every n-th pixel of every n-th row (intrinsics scaled to match; colour averaged over each '
        'n x n cell). 0 = auto: the largest n up to 4 at which one pixel at depth_max_m still spans at most '
        'one voxel, so the TSDF gets every detail it can hold (3 for a 640x480 camera with 2 cm voxels); '
        '1 = full resolution.',
        minimum=0,
        maximum=8,
        read_only=True,
    )
    min_translation_m: float = setting(
        0.0,
        'Skip a frame unless the camera moved this far since the last integrated one (0 = off), metres.',
        minimum=0.0,
        maximum=10.0,
        read_only=True,
    )
    min_rotation_deg: float = setting(
        0.0,
        'Skip a frame unless the camera turned this much since the last '
        'integrated one (0 = off), degrees; a frame passes if it moved or turned '
        'enough.',
        minimum=0.0,
        maximum=180.0,
        read_only=True,
    )
    weight_threshold: float = setting(
        3.0,
        'Voxels observed fewer times than this are left out of the cloud, mesh and BEV.',
        minimum=0.0,
        maximum=1000.0,
        read_only=True,
    )
    bev_size_px: int = setting(
        512,
        "Longest side of the bird's-eye view, pixels (GPT4Scene uses 512).",
        minimum=32,
        maximum=8192,
        read_only=True,
    )
    bev_max_height_m: float = setting(
        1.9,
        'Surfaces above this height (map z) are cut away in the BEV (the ceiling), metres.',
        minimum=-10.0,
        maximum=100.0,
        read_only=True,
    )
    bev_margin_m: float = setting(
        0.1, 'Border around the mapped area in the BEV, metres.', minimum=0.0, maximum=10.0, read_only=True
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if self.depth_max_m <= self.depth_min_m:
            raise ValueError(f'MappingConfig.depth_max_m={self.depth_max_m}: must be > depth_min_m={self.depth_min_m}')
        if self.initial_block_count > self.max_block_count:
            raise ValueError(
                f'MappingConfig.initial_block_count={self.initial_block_count}: must be <= '
                f'max_block_count={self.max_block_count}'
            )


@dataclass(frozen=True)
class MappingNodeConfig:
    """Settings of the ``mapping_node`` around the map: inputs, timing and outputs."""

    input_qos: str = setting(
        'sensor_data',
        'QoS of the image, camera info and odometry subscriptions: sensor_data (best effort) or reliable.',
        choices=INPUT_QOS,
        read_only=True,
    )
    input_history_depth: int = setting(
        10,
        'Messages each input subscription keeps until the node takes them; '
        'older ones are lost when the node falls behind.',
        minimum=1,
        maximum=10000,
        read_only=True,
    )
    sync_slop_s: float = setting(
        0.02,
        'Largest stamp difference between colour, depth and camera info accepted as one frame, seconds.',
        greater_than=0.0,
        maximum=1.0,
        read_only=True,
    )
    sync_queue_size: int = setting(
        10, 'Messages kept per input while synchronising.', minimum=1, maximum=1000, read_only=True
    )
    frame_queue_size: int = setting(
        8,
        'Synchronised frames waiting for integration; the oldest is dropped when full. With skip_behind_s it '
        "bounds memory and latency; at 30 Hz, 8 frames cover the map thread's longest regular stall (reading the "
        'surface out for the outputs, 60-170 ms on two busy cores), so such a stall loses nothing.',
        minimum=1,
        maximum=1000,
        read_only=True,
    )
    skip_behind_s: float = setting(
        0.25,
        'With input_qos sensor_data (a live camera), a queued frame that has waited this long is skipped '
        '(counted as frames_skipped_behind) when a newer one waits behind it: when the node cannot keep up it '
        'integrates the newest frames at a lower rate (an adaptive stride, logged once with its reason and '
        'reported as stride_engaged in /diagnostics) instead of falling behind; shorter stalls are caught up. '
        'With reliable input (recorded data played as fast as possible) every frame is integrated. 0 = never '
        'skip, seconds.',
        minimum=0.0,
        maximum=60.0,
        read_only=True,
    )
    tick_budget_s: float = setting(
        0.05,
        'Longest time the map thread spends integrating queued frames before it runs the map services and '
        'reads out the outputs that are due, so that no output waits for a backlog to drain, seconds.',
        greater_than=0.0,
        maximum=10.0,
        read_only=True,
    )
    input_timeout_s: float = setting(
        3.0,
        'An input (colour, depth, camera_info, odometry) silent this long turns '
        'the diagnostics to ERROR, naming it and its topic, seconds.',
        greater_than=0.0,
        maximum=3600.0,
        read_only=True,
    )
    odom_buffer_s: float = setting(
        10.0, 'Odometry history kept for interpolation, seconds.', greater_than=0.0, maximum=600.0, read_only=True
    )
    odom_max_gap_s: float = setting(
        0.25,
        'A frame whose stamp falls between odometry messages further apart than this is dropped, seconds.',
        greater_than=0.0,
        maximum=10.0,
        read_only=True,
    )
    odom_wait_s: float = setting(
        0.5,
        'How long a frame newer than the latest odometry waits for it, seconds.',
        minimum=0.0,
        maximum=10.0,
        read_only=True,
    )
    base_to_optical_translation_m: tuple = setting(
        (0.0, 0.0, 0.0),
        'Camera optical frame origin in the odometry child (base) frame [x, y, z], metres; '
        'used when use_tf is false or tf2_ros is not installed.',
        read_only=True,
    )
    base_to_optical_rotation_xyzw: tuple = setting(
        (-0.5, 0.5, -0.5, 0.5),
        'Rotation of the optical frame (z forward, y down) in the base frame as a '
        'quaternion [x, y, z, w]; the default is the REP-103 camera_link -> optical rotation.',
        read_only=True,
    )
    map_directory: str = setting(
        '',
        'Folder that ~/save_map and ~/load_map are confined to: they take a file name or a relative path '
        'inside it (empty: $XDG_DATA_HOME/gpt4scene_ros/maps, by default ~/.local/share/gpt4scene_ros/maps); '
        'created user-only.',
        read_only=True,
    )
    use_tf: bool = setting(
        False,
        'Look the camera pose on the robot up in TF (needs tf2_ros) instead of the two parameters above.',
        read_only=True,
    )
    bev_period_s: float = setting(
        1.0,
        'Publish ~/bev and ~/bev_info this often when the map changed and someone subscribes, seconds; the '
        'periods of all map outputs are counted from one clock, so outputs due together share one read-out '
        'of the map.',
        greater_than=0.0,
        maximum=3600.0,
        read_only=True,
    )
    cloud_period_s: float = setting(
        2.0,
        'Publish ~/map_cloud this often when the map changed and someone subscribes, seconds.',
        greater_than=0.0,
        maximum=3600.0,
        read_only=True,
    )
    mesh_period_s: float = setting(
        5.0,
        'Publish ~/mesh this often when the map changed and someone subscribes, seconds.',
        greater_than=0.0,
        maximum=3600.0,
        read_only=True,
    )
    mesh_max_triangles: int = setting(
        100000,
        'Larger meshes are simplified (vertex clustering) before '
        'publishing: RViz markers cost about 3 us per vertex to build.',
        minimum=100,
        maximum=10_000_000,
        read_only=True,
    )
    diagnostics_period_s: float = setting(
        1.0, 'Publish /diagnostics this often, seconds.', greater_than=0.0, maximum=3600.0, read_only=True
    )
    instances_enabled: bool = setting(
        True,
        'Segment the map into object instances, choose keyframes and publish '
        '~/objects, ~/object_markers, ~/bev_marked and ~/scene_snapshot.',
        read_only=True,
    )
    instance_period_s: float = setting(
        2.0,
        'Update the instances this often (in a worker, from a snapshot of the map), seconds.',
        greater_than=0.0,
        maximum=3600.0,
        read_only=True,
    )
    instance_max_duty: float = setting(
        0.8,
        'Share of the time the instance worker may spend updating: after an update that took t seconds it '
        'rests t * (1 / duty - 1) before the next, so that on a loaded machine it leaves the CPU to integration '
        '(1 = back to back; 0.8 keeps the objects within their period on two cores at 30 Hz, BENCHMARKS.md).',
        greater_than=0.0,
        maximum=1.0,
        read_only=True,
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if len(self.base_to_optical_translation_m) != 3:
            raise ValueError(
                f'MappingNodeConfig.base_to_optical_translation_m={self.base_to_optical_translation_m}'
                ': must have 3 numbers'
            )
        if len(self.base_to_optical_rotation_xyzw) != 4:
            raise ValueError(
                f'MappingNodeConfig.base_to_optical_rotation_xyzw={self.base_to_optical_rotation_xyzw}'
                ': must have 4 numbers'
            )
