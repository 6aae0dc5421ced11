"""The ROS 2 nodes (player, mapping_node, query_node): wiring of the stages below to topics and services."""

import os

# Open3D's OpenMP threads busy-wait after each kernel by default; in a node they
# then starve the DDS and executor threads on small machines (measured on 2 cores:
# 348 ms -> 16 ms median frame latency with the player in another process, see
# BENCHMARKS.md). Must be set before Open3D is loaded; a user's own setting wins.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
