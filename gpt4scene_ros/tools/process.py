"""``gpt4scene-process DATA_DIR OUT_DIR``: the mapping core on a recorded sequence, without ROS.

Writes the bird's-eye view, the map, the instances and the marked keyframes into OUT_DIR
(:mod:`gpt4scene_ros.objects.offline` lists the files) and prints the timing summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from gpt4scene_ros.common.settings.instances import DETECTORS, KEYFRAME_SELECTIONS, InstanceConfig
from gpt4scene_ros.common.settings.mapping import MAP_DEVICES, MappingConfig
from gpt4scene_ros.io.bags import BagTopics
from gpt4scene_ros.io.sequence import SequenceError
from gpt4scene_ros.objects.detectors import DetectorError
from gpt4scene_ros.objects.offline import process_sequence


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='gpt4scene-process', description=__doc__.splitlines()[0])
    parser.add_argument(
        'data_dir', help='recorded folder (ScanNet export, OpenEQA episode, 7-Scenes, TUM) or rosbag2 bag (.mcap, .db3)'
    )
    parser.add_argument(
        'out_dir',
        help='folder for bev.png, bev_meta.json, map.ply, instances.json, '
        'bev_marked.png, keyframes/, keyframes.json, timing.json',
    )
    parser.add_argument('--voxel-size', type=float, default=MappingConfig.voxel_size_m, help='metres')
    parser.add_argument('--device', choices=MAP_DEVICES, default='auto')
    parser.add_argument('--stride', type=int, default=1, help='use every n-th frame')
    parser.add_argument('--max-frames', type=int, default=0, help='0 = all')
    parser.add_argument(
        '--gravity', choices=('auto', 'none'), default='auto', help='auto: z-up map frame estimated from the data'
    )
    parser.add_argument('--keyframes', type=int, default=InstanceConfig.num_keyframes, help='keyframes to choose')
    parser.add_argument(
        '--selection', choices=KEYFRAME_SELECTIONS, default=InstanceConfig.keyframe_selection, help='keyframe selection'
    )
    parser.add_argument(
        '--detector',
        choices=DETECTORS,
        default='none',
        help='learned detector naming the instances (see InstanceConfig.detector)',
    )
    parser.add_argument(
        '--masks',
        default=None,
        metavar='DIR',
        help='instance masks per frame (frame-XXXXXX.mask.png, 8- or 16-bit labels, 0 = none) fused into the objects',
    )
    parser.add_argument('--detector-model', default='', help='model folder or hub id (transformers detector)')
    parser.add_argument(
        '--update-every', type=int, default=60, help='update the instances every N integrated frames (and at the end)'
    )
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    for role, text in (
        ('color', 'colour images'),
        ('depth', 'depth images'),
        ('camera_info', 'CameraInfo'),
        ('odometry', 'Odometry or PoseStamped'),
    ):
        parser.add_argument(
            f'--{role.replace("_", "-")}-topic',
            dest=f'{role}_topic',
            default=getattr(BagTopics, role),
            help=f'bags: topic of the {text} (default %(default)s)',
        )
    args = parser.parse_args(argv)
    if args.stride < 1 or args.max_frames < 0 or args.update_every < 0:
        parser.error('--stride must be >= 1, --max-frames and --update-every >= 0')
    try:
        config = dataclasses.replace(MappingConfig(), voxel_size_m=args.voxel_size, device=args.device)
        instances = InstanceConfig(
            num_keyframes=args.keyframes,
            keyframe_selection=args.selection,
            detector=args.detector,
            detector_model=args.detector_model,
        )
        summary = process_sequence(
            args.data_dir,
            args.out_dir,
            config,
            gravity=args.gravity,
            stride=args.stride,
            max_frames=args.max_frames,
            progress=not args.quiet,
            instances=instances,
            update_every=args.update_every,
            bag_topics=BagTopics(args.color_topic, args.depth_topic, args.camera_info_topic, args.odometry_topic),
            masks_dir=args.masks,
        )
    except (SequenceError, ValueError, DetectorError) as error:
        print(f'gpt4scene-process: {error}', file=sys.stderr)
        return 2
    for key, value in summary.items():
        print(f'{key}: {value}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
