"""Mapping benchmark on the real 7-Scenes kitchen (1000 frames, 640x480).

  source scripts/env.sh && python -P bench/mapping.py [--kitchen DIR] [--frames 1000] [--devices CPU:0,CUDA:0]

Prints one table per device:
- bare ``VoxelBlockGrid.integrate`` (block coordinates + integrate) per frame, the oracle;
- ``SceneMap.integrate`` per frame (input checks, depth cleaning, block budget);
- the mapping node end to end, in this process over real DDS: publish colour, depth,
  camera info and odometry, until the node has integrated the frame; and the node's
  own latency (synchronised arrival -> integrated). Overhead = node time / bare integrate;
- BEV render for the full map, point-cloud size, blocks and map memory after all
  frames and after revisiting the first 200 frames (must not grow), peak RSS.

``--quality``: instead, the map's accuracy at each integration decimation (``integration_decimation`` 1, 2, 3
and auto): every frame fused in the gravity-aligned map frame, then the map ray cast at every 25th pose and
compared with that frame's measured depth within [depth_min_m, depth_max_m] ("map-to-depth": median and p90 of
|rendered - measured|, and the share of measured pixels the map renders).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import platform
import resource
import statistics
import threading
import time
from pathlib import Path

import numpy as np

import gpt4scene_ros.nodes  # noqa: F401  (first: sets the nodes' OpenMP policy before Open3D loads)

# isort: split
import open3d as o3d
import open3d.core as o3c

from gpt4scene_ros.common.frames import depth_to_millimetres
from gpt4scene_ros.common.settings.mapping import MappingConfig
from gpt4scene_ros.io.open import open_sequence
from gpt4scene_ros.mapping.bev import map_bev
from gpt4scene_ros.mapping.gravity import estimate_gravity_alignment
from gpt4scene_ros.mapping.raycast import render_depth
from gpt4scene_ros.mapping.tsdf import SceneMap, integration_decimation

REPO_ROOT = Path(__file__).resolve().parents[1]


def stats(times_ms) -> str:
    times_ms = np.asarray(times_ms)
    return f'{np.median(times_ms):.1f} | {np.percentile(times_ms, 95):.1f} | {len(times_ms)}'


def load_frames(kitchen: Path, count: int):
    sequence = open_sequence(kitchen)
    alignment = estimate_gravity_alignment(sequence)
    frames = [sequence.load(i) for i in range(min(count, len(sequence)))]
    return sequence, alignment, frames


def bare_integrate_ms(frames, sequence, alignment, config: MappingConfig, device: str) -> list:
    """Open3D alone, with the same settings: the lower bound for any wrapper."""
    grid = o3d.t.geometry.VoxelBlockGrid(
        attr_names=('tsdf', 'weight', 'color'),
        attr_dtypes=(o3c.float32, o3c.float32, o3c.float32),
        attr_channels=((1), (1), (3)),
        voxel_size=config.voxel_size_m,
        block_resolution=config.block_resolution,
        block_count=config.initial_block_count,
        device=o3c.Device(device),
    )
    K = o3c.Tensor(sequence.intrinsics.matrix(), o3c.float64)
    times = []
    for frame in frames:
        on_device = o3c.Device(device)
        depth = o3d.t.geometry.Image(o3c.Tensor(np.ascontiguousarray(frame.depth_m, np.float32))).to(on_device)
        color = o3d.t.geometry.Image(o3c.Tensor(frame.color.astype(np.float32) / 255.0)).to(on_device)
        T_camera_map = np.linalg.inv(alignment.T_map_world @ frame.T_world_camera)
        extrinsic = o3c.Tensor(T_camera_map, o3c.float64)
        start = time.perf_counter()
        blocks = grid.compute_unique_block_coordinates(
            depth, K, extrinsic, 1.0, config.depth_max_m, config.truncation_voxels
        )
        grid.integrate(blocks, depth, color, K, extrinsic, 1.0, config.depth_max_m, config.truncation_voxels)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def scene_map_run(frames, sequence, alignment, config: MappingConfig):
    scene_map = SceneMap(config)
    times = []
    for frame in frames:
        result = scene_map.integrate(
            frame.color,
            frame.depth,
            sequence.intrinsics,
            alignment.T_map_world @ frame.T_world_camera,
            frame.depth_scale,
        )
        times.append(result.duration_ms)
    return scene_map, times


def node_parameters(config: MappingConfig) -> list:
    """The mapping node as both node runs measure it: reliable input, queues that drop nothing, no map outputs."""
    from rclpy.parameter import Parameter

    return [
        Parameter('device', value=config.device),
        Parameter('input_qos', value='reliable'),
        Parameter('frame_queue_size', value=1000),
        Parameter('input_history_depth', value=100),
        Parameter('bev_period_s', value=3600.0),
        Parameter('cloud_period_s', value=3600.0),
        Parameter('mesh_period_s', value=3600.0),
    ]


def node_run(frames, sequence, alignment, config: MappingConfig, count: int):
    """Per-frame time through the mapping node (in this process, real DDS)."""
    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.executors import MultiThreadedExecutor
    from sensor_msgs.msg import CameraInfo, Image

    from gpt4scene_ros.common.transforms import R_BASE_OPTICAL, invert_transform, make_transform
    from gpt4scene_ros.nodes.mapping_node import MappingNode
    from gpt4scene_ros.ros.conversions.camera_info import intrinsics_to_camera_info
    from gpt4scene_ros.ros.conversions.geometry import transform_to_pose
    from gpt4scene_ros.ros.conversions.images import numpy_to_image
    from gpt4scene_ros.ros.conversions.time import time_to_msg
    from gpt4scene_ros.ros.qos import reliable

    rclpy.init()
    node = MappingNode(parameter_overrides=node_parameters(config))
    source = rclpy.create_node('bench_source')
    executor = MultiThreadedExecutor()
    for n in (node, source):
        executor.add_node(n)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    qos = reliable(10)
    pubs = [
        source.create_publisher(t, name, qos)
        for t, name in (
            (Odometry, 'odom'),
            (Image, 'camera/color/image_raw'),
            (Image, 'camera/depth/image_raw'),
            (CameraInfo, 'camera/color/camera_info'),
        )
    ]
    while not all(p.get_subscription_count() for p in pubs):
        time.sleep(0.01)
    T_optical_base = invert_transform(make_transform(R_BASE_OPTICAL, np.zeros(3)))
    end_to_end = []
    for index, frame in enumerate(frames[:count]):
        stamp = time_to_msg(1000.0 + index / 30.0)
        odom = Odometry(child_frame_id='camera_link')
        odom.header.frame_id, odom.header.stamp = 'odom', stamp
        odom.pose.pose = transform_to_pose(alignment.T_map_world @ frame.T_world_camera @ T_optical_base)
        depth_mm = depth_to_millimetres(frame.depth, frame.depth_scale)
        before = node.counts['frames_integrated']
        start = time.perf_counter()
        pubs[0].publish(odom)
        pubs[1].publish(numpy_to_image(frame.color, 'rgb8', stamp, 'camera_color_optical_frame'))
        pubs[2].publish(numpy_to_image(depth_mm, '16UC1', stamp, 'camera_color_optical_frame'))
        pubs[3].publish(intrinsics_to_camera_info(sequence.intrinsics, stamp, 'camera_color_optical_frame'))
        deadline = time.monotonic() + 10
        while node.counts['frames_integrated'] == before and time.monotonic() < deadline:
            time.sleep(0.0005)
        end_to_end.append((time.perf_counter() - start) * 1000.0)
    latency = list(node.latency_ms)
    integrated, dropped = node.counts['frames_integrated'], {k: v for k, v in node.counts.items() if 'dropped' in k}
    executor.shutdown()
    node.destroy_node()
    source.destroy_node()
    rclpy.shutdown()
    return end_to_end, latency, integrated, dropped


def node_run_with_player(kitchen: Path, config: MappingConfig, count: int):
    """The node's own latency (synchronised arrival -> integrated) with the player in another process."""
    import subprocess

    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    from gpt4scene_ros.nodes.mapping_node import MappingNode

    rclpy.init()
    node = MappingNode(parameter_overrides=node_parameters(config))
    node.latency_ms = collections.deque(maxlen=100000)
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    player = REPO_ROOT / '.build' / 'install' / 'gpt4scene_ros' / 'lib' / 'gpt4scene_ros' / 'player'
    subprocess.run(
        [
            str(player),
            '--ros-args',
            '-p',
            f'data_dir:={kitchen}',
            '-p',
            f'max_frames:={count}',
            '-p',
            'playback_mode:=as_fast_as_possible',
            '-p',
            'wait_for_subscribers:=1',
            '--log-level',
            'warn',
        ],
        check=True,
    )
    deadline = time.monotonic() + 60
    while node.counts['frames_integrated'] < count and time.monotonic() < deadline:
        time.sleep(0.05)
    latency, integrated = list(node.latency_ms), node.counts['frames_integrated']
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown()
    return latency, integrated


def bench_device(device: str, kitchen: Path, sequence, alignment, frames, node_frames: int):
    config = dataclasses.replace(MappingConfig(), device=device)
    bare = bare_integrate_ms(frames, sequence, alignment, config, device)
    scene_map, core_times = scene_map_run(frames, sequence, alignment, config)
    blocks_after, memory_after = scene_map.num_blocks, scene_map.memory_bytes
    bev_times = []
    for frame in frames[:200]:  # revisit mapped space; time a BEV after some of these frames
        scene_map.integrate(
            frame.color,
            frame.depth,
            sequence.intrinsics,
            alignment.T_map_world @ frame.T_world_camera,
            frame.depth_scale,
        )
        if len(bev_times) < 10:
            start = time.perf_counter()
            map_bev(*scene_map.point_cloud(), config)
            bev_times.append((time.perf_counter() - start) * 1000.0)
    points, _ = scene_map.point_cloud()
    end_to_end, latency, integrated, dropped = node_run(frames, sequence, alignment, config, node_frames)
    player_latency, player_integrated = node_run_with_player(kitchen, config, node_frames)
    bare_median = statistics.median(bare)
    print(
        f'\n### {device}: {len(frames)} frames, voxel {config.voxel_size_m} m, block_resolution '
        f'{config.block_resolution}'
    )
    print('| step | median ms | p95 ms | frames |')
    print('|---|---|---|---|')
    print(f'| bare VoxelBlockGrid integrate | {stats(bare)} |')
    print(f'| SceneMap.integrate | {stats(core_times)} |')
    print(f'| node: publish -> integrated (DDS included) | {stats(end_to_end)} |')
    print(f'| node: synchronised arrival -> integrated | {stats(latency)} |')
    print(f'| node, player in another process: arrival -> integrated | {stats(player_latency)} |')
    print(f'| BEV render of the full map, just after an integrate | {stats(bev_times)} |')
    print()
    print(
        f'- node overhead ratio (median node publish->integrated / median bare integrate): '
        f'{statistics.median(end_to_end) / bare_median:.2f}; arrival->integrated / bare: '
        f'{statistics.median(latency) / bare_median:.2f}; SceneMap / bare: '
        f'{statistics.median(core_times) / bare_median:.2f}; with the player in another process, arrival -> '
        f'integrated / bare: {statistics.median(player_latency) / bare_median:.2f} '
        f'({player_integrated}/{node_frames} integrated)'
    )
    print(f'- node integrated {integrated}/{min(node_frames, len(frames))} frames, dropped {dropped or "none"}')
    print(
        f'- map after {len(frames)} frames: {blocks_after} blocks, {memory_after / 1e6:.0f} MB, '
        f'{len(points)} surface points; after revisiting 200 frames: {scene_map.num_blocks} blocks, '
        f'{scene_map.memory_bytes / 1e6:.0f} MB'
    )


def map_quality(sequence, alignment, frames, decimations=(1, 2, 3, 0)) -> None:
    """Map-to-depth accuracy of the kitchen fused at each decimation (0 = auto); see the module docstring."""
    print(
        '\n| integration_decimation | image fused | integrate median ms | blocks | surface points '
        '| map-to-depth median cm | p90 cm | measured pixels rendered |'
    )
    print('|---|---|---|---|---|---|---|---|')
    for decimation in decimations:
        config = MappingConfig(device='CPU:0', integration_decimation=decimation)
        step = integration_decimation(config, sequence.intrinsics)
        scene_map, times = scene_map_run(frames, sequence, alignment, config)
        errors, coverage = [], []
        for frame in frames[5::25]:
            rendered = render_depth(scene_map, sequence.intrinsics, alignment.T_map_world @ frame.T_world_camera)
            measured = frame.depth_m
            inside = (measured >= config.depth_min_m) & (measured <= config.depth_max_m)
            both = inside & (rendered > 0)
            errors.append(np.abs(rendered[both] - measured[both]))
            coverage.append(both.sum() / max(1, inside.sum()))
        errors = np.concatenate(errors)
        width, height = sequence.intrinsics.width // step, sequence.intrinsics.height // step
        print(
            f'| {decimation or f"0 (auto: {step})"} | {width}x{height} | {np.median(times):.2f} | '
            f'{scene_map.num_blocks} | {len(scene_map.point_cloud()[0])} | {100 * np.median(errors):.3f} | '
            f'{100 * np.percentile(errors, 90):.2f} | {np.mean(coverage):.3f} |'
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--kitchen', type=Path, default=REPO_ROOT.parent / 'shared' / 'data' / '7scenes-redkitchen')
    parser.add_argument('--frames', type=int, default=1000)
    parser.add_argument('--node-frames', type=int, default=300, help='frames sent through the node')
    parser.add_argument('--devices', default='CPU:0,CUDA:0' if o3c.cuda.is_available() else 'CPU:0')
    parser.add_argument('--quality', action='store_true', help='map accuracy at each integration decimation')
    args = parser.parse_args()
    os.environ.setdefault('ROS_DOMAIN_ID', str(60 + os.getpid() % 30))
    print(
        f'{time.strftime("%Y-%m-%d")}, {platform.machine()}, {os.cpu_count()} cores, '
        f'Open3D {o3d.__version__}, CUDA available: {o3c.cuda.is_available()}'
    )
    sequence, alignment, frames = load_frames(args.kitchen, args.frames)
    if args.quality:
        map_quality(sequence, alignment, frames)
        return
    for device in args.devices.split(','):
        bench_device(device, args.kitchen, sequence, alignment, frames, args.node_frames)
    print(f'\npeak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB')


if __name__ == '__main__':
    main()
