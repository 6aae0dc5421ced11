"""The shared ``main`` skeleton of every node: init, build, run, clean shutdown, exit code."""

from __future__ import annotations

import sys

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor

from gpt4scene_ros.ros.dds_shm import remove_stale_segments

EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2


def run_node(node_class, run, args=None) -> int:
    """Create ``node_class()`` and return ``run(node)``'s exit code.

    A configuration the node refuses (ValueError, bad parameter) is logged as
    FATAL and gives EXIT_BAD_CONFIG; Ctrl-C and external shutdown give EXIT_OK.
    """
    try:
        rclpy.init(args=args)
    except Exception as error:  # e.g. malformed --ros-args
        print(f'[FATAL] cannot initialise ROS: {error}', file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        removed, freed = remove_stale_segments()
        if removed:
            rclpy.logging.get_logger(node_class.NODE_NAME).info(
                f'removed {removed} Fast DDS shared-memory segments ({freed / 1e6:.0f} MB) that killed processes '
                'left in /dev/shm'
            )
        try:
            node = node_class()
        except (ValueError, ParameterException) as error:
            rclpy.logging.get_logger(node_class.NODE_NAME).fatal(str(error))
            return EXIT_BAD_CONFIG
        return run(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        return EXIT_OK
    except Exception:
        # SIGINT/SIGTERM shut the context down while the node was in a call (e.g. publishing: "publisher's
        # context is invalid"): a requested stop, not a failure.
        if not rclpy.ok():
            return EXIT_OK
        raise
    finally:
        if rclpy.ok():
            rclpy.shutdown()


def spin_multi_threaded(node, num_threads: int | None = None, on_ready=None) -> int:
    """Spin ``node`` until shutdown on a MultiThreadedExecutor (callback groups run in parallel).

    ``on_ready`` (e.g. logging that the node serves) runs once the executor exists: a SIGTERM sent on that
    line then stops a spinning executor, not one being built (rclpy prints a traceback for that)."""
    executor = MultiThreadedExecutor(num_threads=num_threads)
    executor.add_node(node)
    if on_ready is not None:
        on_ready()
    executor.spin()
    return EXIT_OK


def spin_single_threaded(node) -> int:
    """Spin ``node`` until shutdown on a SingleThreadedExecutor, then destroy it (so it stops its own threads).

    For nodes whose callbacks only enqueue: rclpy's MultiThreadedExecutor polls a subscription again while
    its callback waits for a worker, and at 30 Hz images that loop took a whole core of two (BENCHMARKS.md).
    """
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    finally:
        try:
            node.destroy_node()
        except Exception:  # noqa: BLE001 - the context may already be gone; the process is ending anyway
            pass
    return EXIT_OK
