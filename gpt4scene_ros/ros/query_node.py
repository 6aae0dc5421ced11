"""``query_node``: serves ``~/scene_query`` (gpt4scene_ros/srv/SceneQuery).

It keeps the latest ``instances`` (gpt4scene_ros/msg/ObjectInstanceArray)
and answers through :func:`gpt4scene_ros.core.scene_query.answer_query`.
Every request gets a response; failures have ``success=false``, an
``error_code`` and a ``message``.
"""

from __future__ import annotations

import threading
import time

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from ..core.config import QueryConfig
from ..core.scene_query import ErrorCode, QueryResult, answer_query
from ..msg import ObjectInstanceArray
from ..srv import SceneQuery
from .conversions import fill_query_response, object_box_from_msg, query_request_from_msg
from .entry import run_node, spin_multi_threaded
from .params import declare_settings


class QueryNode(Node):
    NODE_NAME = 'query_node'

    def __init__(self, **node_kwargs):
        super().__init__(self.NODE_NAME, **node_kwargs)
        self.config = declare_settings(self, QueryConfig)
        self._lock = threading.Lock()
        self._instances = ObjectInstanceArray()
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(ObjectInstanceArray, 'instances', self._on_instances, latched)
        # Its own group, so that sensor callbacks keep running during inference.
        self.create_service(SceneQuery, '~/scene_query', self._on_query,
                            callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(f'serving {self.resolve_service_name("~/scene_query")}')

    def _on_instances(self, msg: ObjectInstanceArray):
        with self._lock:
            self._instances = msg

    def _on_query(self, request, response):
        started = time.perf_counter()
        with self._lock:
            instances = self._instances
        try:
            result = answer_query(query_request_from_msg(request), self.config,
                                  [object_box_from_msg(m) for m in instances.instances])
        except Exception as error:  # the service must answer whatever goes wrong
            self.get_logger().error(f'scene query failed: {error!r}')
            result = QueryResult(error_code=ErrorCode.MODEL, message=f'internal error: {error!r}')
        fill_query_response(result, response, {m.id: m for m in instances.instances})
        response.map_stamp = instances.header.stamp
        response.prepare_ms = (time.perf_counter() - started) * 1000.0
        if not result.success:
            self.get_logger().warning(f'query (task={request.task[:40]!r}) refused: {result.message}')
        return response


def main(args=None) -> int:
    return run_node(QueryNode, spin_multi_threaded, args)


if __name__ == '__main__':
    raise SystemExit(main())
