"""The mapping node's map outputs: ``~/bev`` with ``~/bev_info``, ``~/map_cloud`` and ``~/mesh``.

Only the map thread may touch the map, and it must keep integrating, so it does no more than read
out what the due outputs need: the surface once for all of them (cached per map state; the object
layer's update takes the latest read-out too), the mesh only when someone subscribes to it. A
worker thread renders the BEV, builds the messages and publishes; the mesh, whose marker takes
longest to build, has a worker of its own so it never delays the BEV. An output nobody subscribes
to is not computed at all; a late subscriber still gets the current state (the topics are latched
and the output is published at its next period).
"""

from __future__ import annotations

import collections
import concurrent.futures
import time

from nav_msgs.msg import MapMetaData
from sensor_msgs.msg import Image, PointCloud2
from visualization_msgs.msg import Marker

from gpt4scene_ros.common.settings.mapping import MappingConfig, MappingNodeConfig
from gpt4scene_ros.mapping.bev import map_bev
from gpt4scene_ros.mapping.mesh import decimate_mesh
from gpt4scene_ros.objects.mapper import Mapper
from gpt4scene_ros.ros.conversions.images import numpy_to_image
from gpt4scene_ros.ros.conversions.markers import mesh_marker_bytes
from gpt4scene_ros.ros.conversions.point_cloud import point_cloud_to_msg
from gpt4scene_ros.ros.conversions.scene import bev_info_msg
from gpt4scene_ros.ros.qos import LATCHED

MAP_OUTPUTS = ('bev', 'cloud', 'mesh')


class MapOutputs:
    """Publishers and workers of the map outputs of one node (see the module docstring)."""

    def __init__(self, node, map_config: MappingConfig, config: MappingNodeConfig) -> None:
        self.node, self.map_config, self.config = node, map_config, config
        self.bev_pub = node.create_publisher(Image, '~/bev', LATCHED)
        self.bev_info_pub = node.create_publisher(MapMetaData, '~/bev_info', LATCHED)
        self.cloud_pub = node.create_publisher(PointCloud2, '~/map_cloud', LATCHED)
        self.mesh_pub = node.create_publisher(Marker, '~/mesh', LATCHED)
        self.periods_s = {'bev': config.bev_period_s, 'cloud': config.cloud_period_s, 'mesh': config.mesh_period_s}
        self.published_version = dict.fromkeys(MAP_OUTPUTS, -1)
        self.counts: collections.Counter[str] = collections.Counter()
        self.timing_ms: dict[str, collections.deque[float]] = collections.defaultdict(
            lambda: collections.deque(maxlen=50)
        )
        self._workers = {
            'images': concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='map-outputs'),
            'mesh': concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='mesh-output'),
        }
        self._jobs: dict[str, concurrent.futures.Future | None] = dict.fromkeys(self._workers)
        self._pending: set[str] = set()  # due, waiting for their worker
        self.latest_read: tuple | None = None  # (monotonic s, map version, surface) of the latest read-out

    def wanted(self) -> set[str]:
        """The outputs someone subscribes to now."""
        subscribed = {
            'bev': self.bev_pub.get_subscription_count() + self.bev_info_pub.get_subscription_count(),
            'cloud': self.cloud_pub.get_subscription_count(),
            'mesh': self.mesh_pub.get_subscription_count(),
        }
        return {name for name, count in subscribed.items() if count}

    def publish_due(self, due: set[str], mapper: Mapper, stamp, frame_id: str) -> None:
        """On the map thread, every round: read out what the due outputs need and hand it to the workers. An
        output due while its worker is still busy waits for it (the next round), not for its next period."""
        if due:
            self._pending |= {name for name in due & self.wanted() if self.published_version[name] != mapper.version}
        images = self._pending & {'bev', 'cloud'}
        if images and not self._busy('images'):
            points, colors, _ = self.read_surface(mapper)
            self._handed_over(images, mapper.version)
            self._jobs['images'] = self._workers['images'].submit(
                self._publish_images, images, points, colors, stamp, frame_id
            )
        if 'mesh' in self._pending and not self._busy('mesh'):
            started = time.perf_counter()
            mesh = mapper.scene_map.mesh()
            self.timing_ms['mesh_read_ms'].append((time.perf_counter() - started) * 1000.0)
            self._handed_over({'mesh'}, mapper.version)
            self._jobs['mesh'] = self._workers['mesh'].submit(self._publish_mesh, mesh, stamp, frame_id)

    def read_surface(self, mapper: Mapper) -> tuple:
        """On the map thread: the map's surface (points, colours, normals; cached per map state), remembered as
        the latest read-out with its map version and time."""
        started = time.perf_counter()
        surface = mapper.scene_map.surface()
        if self.latest_read is None or self.latest_read[1] != mapper.version:
            self.counts['surface_reads'] += 1
            self.timing_ms['surface_read_ms'].append((time.perf_counter() - started) * 1000.0)
        self.latest_read = (time.monotonic(), mapper.version, surface)
        return surface

    def recent_surface(self, mapper: Mapper, max_age_s: float) -> tuple[int, tuple]:
        """(map version, surface) of the latest read-out if it is younger than ``max_age_s`` and of the current map
        (not from before a reset or a load), else a fresh one: the object layer takes the BEV's read-out rather
        than stalling the map thread for another."""
        if (
            self.latest_read is None
            or time.monotonic() - self.latest_read[0] > max_age_s
            or self.latest_read[1] < mapper.replaced_at
        ):
            self.read_surface(mapper)
        assert self.latest_read is not None
        return self.latest_read[1], self.latest_read[2]

    def _handed_over(self, names: set[str], version: int) -> None:
        self._pending -= names
        for name in names:
            self.published_version[name] = version

    def _busy(self, worker: str) -> bool:
        job = self._jobs[worker]
        return job is not None and not job.done()

    def _publish_images(self, outputs: set[str], points, colors, stamp, frame_id: str) -> None:
        try:
            if 'bev' in outputs:
                started = time.perf_counter()
                bev = map_bev(points, colors, self.map_config)
                self.bev_pub.publish(numpy_to_image(bev.image, 'rgb8', stamp, frame_id))
                self.bev_info_pub.publish(bev_info_msg(bev, stamp))
                self.counts['bev_published'] += 1
                self.timing_ms['bev_ms'].append((time.perf_counter() - started) * 1000.0)
            if 'cloud' in outputs:
                started = time.perf_counter()
                self.cloud_pub.publish(point_cloud_to_msg(points, colors, stamp, frame_id))
                self.counts['cloud_published'] += 1
                self.timing_ms['cloud_ms'].append((time.perf_counter() - started) * 1000.0)
        except Exception as error:  # noqa: BLE001 - an output failing must not stop mapping
            self._failed(error)

    def _publish_mesh(self, mesh, stamp, frame_id: str) -> None:
        try:
            started = time.perf_counter()
            vertices, colors, triangles = decimate_mesh(
                *mesh, self.config.mesh_max_triangles, 2 * self.map_config.voxel_size_m
            )
            self.mesh_pub.publish(mesh_marker_bytes(vertices, colors, triangles, stamp, frame_id))
            self.counts['mesh_published'] += 1
            self.timing_ms['mesh_ms'].append((time.perf_counter() - started) * 1000.0)
        except Exception as error:  # noqa: BLE001 - an output failing must not stop mapping
            self._failed(error)

    def _failed(self, error: Exception) -> None:
        if not self.node.context.ok():
            return  # shutting down while an output was being published
        self.counts['output_errors'] += 1
        self.node.get_logger().error(f'publishing a map output failed: {error!r}', throttle_duration_sec=5.0)

    def close(self) -> None:
        for worker in self._workers.values():
            worker.shutdown(wait=True, cancel_futures=True)
