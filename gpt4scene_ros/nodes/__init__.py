"""The ROS 2 nodes (player, mapping_node, query_node): wiring of the stages below to topics and services."""

import os

# Open3D's OpenMP threads busy-wait after each kernel by default; in a node they
# then starve the DDS and executor threads on small machines (measured on 2 cores:
# 348 ms -> 16 ms median frame latency with the player in another process, see
# BENCHMARKS.md). Must be set before Open3D is loaded; a user's own setting wins.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
# And one OpenMP thread per core but one: on two cores Open3D's kernels ran slower with two threads (9.3 vs 7.5 ms
# per integration alone) and stalled whenever the player or the object layer held the other core; the object
# layer's child inherits the setting (its update took 1.0-1.2 s instead of 1.5 s under the 30 Hz load).
os.environ.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) - 1)))
