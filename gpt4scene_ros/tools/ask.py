"""``gpt4scene-ask``: ask the scene a question over DDS and print the answer with the objects it names.

    gpt4scene-ask "where is my mug?" [--task qa|ground|multi_ground|caption|objects] [--situation TEXT]
                  [--ids 3,7] [--frames N] [--save-images DIR] [--json] [--timeout S] [--service NAME]

Exit code: 0 when the query succeeded, 1 when it was refused (the message says
why), 2 when no service answered within the time limit.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import cv2

EXIT_OK, EXIT_REFUSED, EXIT_NO_SERVICE = 0, 1, 2


def _yaw(orientation) -> float:
    return 2.0 * math.atan2(orientation.z, orientation.w)


def response_to_json(response, image_paths) -> dict:
    return {
        'success': bool(response.success),
        'error_code': int(response.error_code),
        'message': response.message,
        'answer': response.answer,
        'object_ids': [int(i) for i in response.object_ids],
        'instances': [
            {
                'id': int(m.id),
                'label': m.label,
                'confidence': round(float(m.confidence), 3),
                'center': [round(m.pose.position.x, 3), round(m.pose.position.y, 3), round(m.pose.position.z, 3)],
                'size': [round(m.size.x, 3), round(m.size.y, 3), round(m.size.z, 3)],
                'yaw': round(_yaw(m.pose.orientation), 4),
            }
            for m in response.instances
        ],
        'images': image_paths,
        'map_stamp': response.map_stamp.sec + response.map_stamp.nanosec * 1e-9,
        'prepare_ms': round(float(response.prepare_ms), 1),
        'model_ms': round(float(response.model_ms), 1),
        'input_tokens': int(response.input_tokens),
        'image_tokens': int(response.image_tokens),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='gpt4scene-ask', description=__doc__.splitlines()[0])
    parser.add_argument('question', nargs='?', default='')
    parser.add_argument('--task', default='qa', choices=('qa', 'ground', 'multi_ground', 'caption', 'objects'))
    parser.add_argument('--situation', default='', help='where you are (qa, SQA3D style)')
    parser.add_argument('--ids', default='', help='comma-separated object ids (caption: one; objects: a filter)')
    parser.add_argument('--frames', type=int, default=0, help="keyframes for the model (0: the node's default)")
    parser.add_argument('--save-images', default='', metavar='DIR', help='save the images the model saw here')
    parser.add_argument('--json', action='store_true', help='print the whole response as one JSON object')
    parser.add_argument('--timeout', type=float, default=180.0, help='seconds to wait for an answer')
    parser.add_argument('--service', default='/query_node/scene_query')
    args = parser.parse_args(argv)
    try:
        ids = [int(v) for v in args.ids.split(',') if v.strip()]
    except ValueError:
        parser.error(f'--ids {args.ids!r}: expected comma-separated integers')
    if args.frames < 0 or args.timeout <= 0:
        parser.error('--frames must be >= 0 and --timeout > 0')

    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from gpt4scene_ros.io.messages import image_array
    from gpt4scene_ros.ros.service_client import ServiceCallError, ServiceNotReady, ServiceWentAway, call_service
    from gpt4scene_ros.srv import SceneQuery

    rclpy.init()
    node = rclpy.create_node('gpt4scene_ask')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        client = node.create_client(SceneQuery, args.service)
        request = SceneQuery.Request(
            question=args.question,
            task=args.task,
            situation=args.situation,
            object_ids=ids,
            num_frames=args.frames,
            return_images=bool(args.save_images),
        )
        try:
            # One deadline for discovery and answer; a response lost after discovery is asked for again after 30 s.
            response = call_service(
                client, request, args.timeout, resend_s=30.0, executor=executor, give_up_when_gone=True
            )
        except ServiceNotReady:
            print(f'gpt4scene-ask: no service {args.service} answered within {args.timeout:.0f} s', file=sys.stderr)
            return EXIT_NO_SERVICE
        except ServiceWentAway:
            print(f'gpt4scene-ask: {args.service} went away before answering (its node stopped?)', file=sys.stderr)
            return EXIT_NO_SERVICE
        except ServiceCallError:
            print(f'gpt4scene-ask: {args.service} did not answer within {args.timeout:.0f} s', file=sys.stderr)
            return EXIT_NO_SERVICE
        paths = []
        if args.save_images:
            folder = Path(args.save_images)
            folder.mkdir(parents=True, exist_ok=True)
            for k, image in enumerate(response.images):
                path = folder / (f'{k:02d}_bev.png' if k == 0 else f'{k:02d}_keyframe.png')
                cv2.imwrite(str(path), cv2.cvtColor(image_array(image), cv2.COLOR_RGB2BGR))
                paths.append(str(path))
        if args.json:
            print(json.dumps(response_to_json(response, paths), indent=1))
        elif response.success:
            print(response.answer)
            for m in response.instances:
                p, s = m.pose.position, m.size
                print(
                    f'  <OBJ{m.id:03d}> {m.label or "object"}: centre ({p.x:.2f}, {p.y:.2f}, {p.z:.2f}) m, size '
                    f'{s.x:.2f} x {s.y:.2f} x {s.z:.2f} m, yaw {math.degrees(_yaw(m.pose.orientation)):.0f} deg'
                )
            if response.message:
                print(f'note: {response.message}')
            print(
                f'(prepare {response.prepare_ms:.0f} ms, model {response.model_ms:.0f} ms'
                + (f', {len(paths)} images in {args.save_images}' if paths else '')
                + ')'
            )
        else:
            print(f'gpt4scene-ask: refused (error {response.error_code}): {response.message}', file=sys.stderr)
        return EXIT_OK if response.success else EXIT_REFUSED
    except KeyboardInterrupt:
        return EXIT_REFUSED
    finally:
        node.destroy_node()
        rclpy.shutdown()


if __name__ == '__main__':
    sys.exit(main())
