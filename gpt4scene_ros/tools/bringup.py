"""``gpt4scene-bringup``: start what the launch file starts, without ``ros2 launch``.

    gpt4scene-bringup [--data DIR|BAG] [--sensor NAME|FILE] [--params-file FILE ...] [-p NODE.PARAM=VALUE ...]
                      [-r TOPIC:=NEW ...]

Each node of :data:`gpt4scene_ros.common.graph.NODES` runs in its own process (the
player only with ``--data``), with the same parameters files (default: the
package's ``config/gpt4scene.yaml``; later files override earlier ones, e.g. a
``config/vlm/*.yaml`` model overlay), overrides (``-p mapping_node.voxel_size_m=0.03``)
and sensor remappings (``-r camera/color/image_raw:=/camera/color/image_raw``)
as the launch file. ``--sensor realsense_d435`` applies a camera's overlay (``config/sensors/``: its
topic remappings and depth range; explicit ``-p`` and ``-r`` win). Ctrl-C or SIGTERM stops all of
them (SIGINT, then SIGKILL after 10 s). A node that dies is reported with its exit code and the others
are stopped, except the player, which ends by itself when its sequence is done. The player starts once the
other nodes are up (the query service discoverable), so no frame is played into a graph still starting.
Exit code: 0 after a clean stop, 1 when a node died, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from gpt4scene_ros.common.graph import NODES, PACKAGE, SENSOR_TOPICS
from gpt4scene_ros.common.sensor_overlays import available_overlays, load_sensor_overlay, sensor_overlay_path


def _share() -> Path:
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE))


def _executable(name: str) -> str:
    from ament_index_python.packages import get_package_prefix

    installed = Path(get_package_prefix(PACKAGE)) / 'lib' / PACKAGE / name
    if installed.exists():
        return str(installed)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f'{name} is neither installed under {installed.parent} nor on PATH')
    return found


def node_commands(data: str, params_files, overrides, remaps) -> dict:
    """The command line of each node to start: name -> argv."""
    by_node = {}
    for item in overrides:
        target, _, assignment = item.partition('.')
        key, equals, value = assignment.partition('=')
        if not (target and key and equals):
            raise ValueError(f'-p {item!r}: expected NODE.PARAM=VALUE, e.g. mapping_node.voxel_size_m=0.03')
        if target not in {node.name for node in NODES}:
            raise ValueError(f'-p {item!r}: unknown node {target!r}; nodes: {[node.name for node in NODES]}')
        by_node.setdefault(target, []).append(f'{key}:={value}')
    for remap in remaps:
        old, separator, new = remap.partition(':=')
        if not separator or old not in SENSOR_TOPICS:
            raise ValueError(f'-r {remap!r}: expected TOPIC:=NEW with TOPIC one of {list(SENSOR_TOPICS)}')
    commands = {}
    for node in NODES:
        if node.needs_data and not data:
            continue
        argv = [_executable(node.executable), '--ros-args', '-r', f'__node:={node.name}']
        for params_file in params_files:
            argv += ['--params-file', params_file]
        if node.needs_data:
            argv += ['-p', f'data_dir:={data}']
        for assignment in by_node.get(node.name, []):
            argv += ['-p', assignment]
        if node.sensor_topics:
            for remap in remaps:
                argv += ['-r', remap]
        commands[node.name] = argv
    return commands


GRAPH_READY_TIMEOUT_S = 120.0


def _wait_for_the_graph(processes: dict, stopping: list) -> bool:
    """Wait until the query service is discoverable (the nodes finished starting: models loaded and warmed up),
    so that a recording is not played into a graph still busy starting: on two cores the first seconds of it
    were lost to the start-up of the query node. False when stopped or a node died meanwhile; after
    GRAPH_READY_TIMEOUT_S the player starts anyway."""
    import rclpy

    from gpt4scene_ros.srv import SceneQuery

    context = rclpy.context.Context()
    rclpy.init(context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    try:
        node = rclpy.create_node('gpt4scene_bringup', context=context)
        client = node.create_client(SceneQuery, 'query_node/scene_query')
        deadline = time.monotonic() + GRAPH_READY_TIMEOUT_S
        while not client.service_is_ready():
            if stopping or any(process.poll() is not None for process in processes.values()):
                return False
            if time.monotonic() > deadline:
                print('gpt4scene-bringup: the query service is not up after 120 s; playing anyway', flush=True)
                break
            time.sleep(0.1)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='gpt4scene-bringup', description=__doc__.splitlines()[0])
    parser.add_argument(
        '--data',
        default='',
        help='recorded folder (ScanNet, OpenEQA, 7-Scenes, TUM) or rosbag2 bag to play '
        '(starts the player; bag topics: -p player.color_topic=... )',
    )
    parser.add_argument(
        '--params-file',
        dest='params_files',
        action='append',
        default=[],
        help="parameters of the nodes (default: the package's); repeat to overlay",
    )
    parser.add_argument('-p', dest='overrides', action='append', default=[], metavar='NODE.PARAM=VALUE')
    parser.add_argument('-r', dest='remaps', action='append', default=[], metavar='TOPIC:=NEW')
    parser.add_argument(
        '--sensor',
        default='',
        metavar='NAME|FILE',
        help='camera overlay: a name from config/sensors/ (e.g. realsense_d435) or a YAML file',
    )
    args = parser.parse_args(argv)
    try:
        overrides, remaps = list(args.overrides), list(args.remaps)
        if args.sensor:
            sensors_dir = _share() / 'config' / 'sensors'
            path = sensor_overlay_path(args.sensor, sensors_dir)
            if not path.is_file():
                raise ValueError(
                    f'--sensor {args.sensor}: no such overlay; available: '
                    f'{", ".join(available_overlays(sensors_dir))} (or a YAML file)'
                )
            overlay = load_sensor_overlay(path)
            # Parameters: the last assignment wins; remappings: the first matching rule wins.
            overrides = [f'mapping_node.{k}={v}' for k, v in overlay.mapping_parameters.items()] + overrides
            remaps = remaps + [f'{topic}:={target}' for topic, target in overlay.remappings.items()]
            print(f'gpt4scene-bringup: sensor {overlay.name}: {overlay.description}', flush=True)
        params_files = args.params_files or [str(_share() / 'config' / 'gpt4scene.yaml')]
        for params_file in params_files:
            if not Path(params_file).is_file():
                raise ValueError(f'--params-file {params_file}: no such file')
        if args.data and not Path(args.data).exists():
            raise ValueError(f'--data {args.data}: no such sequence folder or bag')
        commands = node_commands(args.data, params_files, overrides, remaps)
        env = dict(os.environ)
        env.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(_share() / 'config' / 'fastdds.xml'))
    except (ValueError, FileNotFoundError) as error:  # SensorOverlayError is a ValueError
        print(f'gpt4scene-bringup: {error}', file=sys.stderr)
        return 2

    stopping = []

    def stop(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    processes = {}
    for name, command in commands.items():
        if name == 'player':
            continue
        processes[name] = subprocess.Popen(command, env=env)
        print(f'gpt4scene-bringup: started {name} (pid {processes[name].pid})', flush=True)
    if 'player' in commands and _wait_for_the_graph(processes, stopping):
        processes['player'] = subprocess.Popen(commands['player'], env=env)
        print(f'gpt4scene-bringup: started player (pid {processes["player"].pid})', flush=True)
    code = 0
    while not stopping:
        for name, process in list(processes.items()):
            status = process.poll()
            if status is None:
                continue
            del processes[name]
            needs_data = next(node.needs_data for node in NODES if node.name == name)
            if needs_data and status == 0:
                print(f'gpt4scene-bringup: {name} finished its sequence', flush=True)
                continue
            print(
                f'gpt4scene-bringup: {name} exited with code {status}; stopping the others', file=sys.stderr, flush=True
            )
            code = 1
            stopping.append('died')
        if not processes:
            break
        time.sleep(0.2)
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 10.0
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f'gpt4scene-bringup: {name} did not stop within 10 s: killed', file=sys.stderr)
            process.kill()
            process.wait()
    print('gpt4scene-bringup: stopped', flush=True)
    return code


if __name__ == '__main__':
    sys.exit(main())
