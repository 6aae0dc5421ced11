"""``query_node``: serves ``~/scene_query`` (gpt4scene_ros/srv/SceneQuery) with a VLM over the marked scene.

It keeps the latest scene snapshot (``mapping_node/scene_snapshot``,
gpt4scene_ros/msg/SceneSnapshot, latched: BEV, keyframes and instances of one
map state) and answers through :func:`gpt4scene_ros.query.scene_query.answer_query`.

The model (``backend``: transformers or openai) is loaded once at start-up,
warmed up, and runs in this node's own worker thread, never in the mapping
node. Queries wait in a bounded queue (``max_pending``) and are rate limited
(``max_queries_per_minute``); more are refused at once with ERROR_BUSY. Each
has a time limit (``query_timeout_s``). ``task=objects`` is
answered from the snapshot without the model. While queries come, each new
snapshot is decoded and a default query's images prepared as it arrives
(``prepare_ahead_s``), so a query does not wait for them. Every request gets a response;
failures have ``success=false``, an ``error_code`` and a ``message``.
"""

from __future__ import annotations

import queue
import threading
import time

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from gpt4scene_ros.common.settings.query import QueryConfig
from gpt4scene_ros.msg import SceneSnapshot
from gpt4scene_ros.query.backends import VlmError, VlmSetupError, make_backend
from gpt4scene_ros.query.prompts import PromptError, PromptTemplates, build_prompt, default_templates_file
from gpt4scene_ros.query.scene_query import ErrorCode, QueryRateLimit, QueryResult, answer_query
from gpt4scene_ros.ros.conversions.scene import fill_query_response, query_request_from_msg, snapshot_from_msg
from gpt4scene_ros.ros.entry import run_node, spin_multi_threaded
from gpt4scene_ros.ros.params import declare_settings
from gpt4scene_ros.ros.qos import LATCHED
from gpt4scene_ros.srv import SceneQuery

PACKAGE = 'gpt4scene_ros'


class _Job:
    def __init__(self, request):
        self.request = request
        self.result = None
        self.done = threading.Event()


class QueryNode(Node):
    NODE_NAME = 'query_node'

    def __init__(self, **node_kwargs):
        super().__init__(self.NODE_NAME, **node_kwargs)
        self.config = cfg = declare_settings(self, QueryConfig)
        templates_file = cfg.prompt_templates_file or str(default_templates_file())
        try:
            self.templates = PromptTemplates.from_yaml(templates_file)
        except PromptError as error:
            raise ValueError(f'parameter prompt_templates_file={templates_file!r}: {error}') from None
        try:
            self.backend = make_backend(cfg)
            if self.backend is not None and cfg.warm_up:
                started = time.perf_counter()
                self.backend.warm_up()
                self.get_logger().info(f'{cfg.backend} backend warmed up in {time.perf_counter() - started:.1f} s')
        except (VlmSetupError, VlmError) as error:  # a missing or broken model stops the node at start-up
            raise ValueError(f'backend {cfg.backend}: {error}') from None
        self._lock = threading.Lock()
        self._decode_lock = threading.Lock()
        self._snapshot_msg = SceneSnapshot()
        self._decoded = (None, None)  # (message it was decoded from, core snapshot)
        self._keyframe_images: dict = {}  # decoded keyframe images kept between snapshots (under _decode_lock)
        self._pending = 0
        self._rate_limit = QueryRateLimit(self.config.max_queries_per_minute)
        self._jobs = queue.Queue()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name='scene_query_model', daemon=True)
        self._worker.start()
        self._last_query_s = -float('inf')
        self._arrived = threading.Event()
        if self.backend is not None and cfg.prepare_ahead_s > 0:
            threading.Thread(target=self._prepare_ahead, name='scene_query_prepare', daemon=True).start()
        self.create_subscription(
            SceneSnapshot,
            'mapping_node/scene_snapshot',
            self._on_snapshot,
            LATCHED,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        # Re-entrant: a query waiting for the model does not keep the next one from being refused or queued.
        self.create_service(SceneQuery, '~/scene_query', self._on_query, callback_group=ReentrantCallbackGroup())

    def log_serving(self) -> None:
        cfg = self.config
        model = f'{cfg.backend} {cfg.model}'.strip() if self.backend is not None else 'no VLM (backend none)'
        self.get_logger().info(f'serving {self.resolve_service_name("~/scene_query")} with {model}')

    def destroy_node(self):
        self._stop.set()
        self._arrived.set()
        self._jobs.put(None)
        super().destroy_node()

    def _on_snapshot(self, msg: SceneSnapshot):
        with self._lock:
            self._snapshot_msg = msg
        self._arrived.set()

    def _prepare_ahead(self):
        """While queries come (``prepare_ahead_s``), decode each new snapshot and prepare a default query's images
        (cached in the snapshot and the backend) in this thread, so the next query takes them ready."""
        while not self._stop.is_set():
            self._arrived.wait()
            self._arrived.clear()
            if self._stop.is_set() or time.monotonic() - self._last_query_s > self.config.prepare_ahead_s:
                continue
            try:
                _, snapshot = self._snapshot()
                if snapshot is not None and snapshot.instances:
                    prompt = build_prompt(
                        snapshot,
                        '',
                        self.config.default_num_frames,
                        self.templates,
                        longest_px=self.config.image_side_px,
                        size_multiple=self.config.image_size_multiple or self.backend.image_size_multiple,
                    )
                    self.backend.prepare_images(prompt.images)
            except Exception as error:  # noqa: BLE001 - preparing ahead is an optimisation; the query reports errors
                self.get_logger().warning(f'preparing the snapshot ahead failed: {error!r}', throttle_duration_sec=30.0)

    def _snapshot(self):
        """The latest snapshot, decoded once (None before the first one, or when it does not decode). One thread
        decodes at a time: a query arriving while the snapshot is prepared ahead waits for it and shares it."""
        with self._decode_lock:
            with self._lock:
                msg, (decoded_from, decoded) = self._snapshot_msg, self._decoded
            if decoded_from is msg:
                return msg, decoded
            decoded = None
            if msg.instances or msg.keyframes or msg.bev.data:
                try:
                    decoded = snapshot_from_msg(msg, self._keyframe_images)
                except ValueError as error:
                    self.get_logger().error(f'scene snapshot does not decode: {error}', throttle_duration_sec=10.0)
            with self._lock:
                self._decoded = (msg, decoded)
            return msg, decoded

    def _work(self):
        while not self._stop.is_set():
            job = self._jobs.get()
            if job is None:
                return
            try:
                job.result = self._answer(job.request)
            finally:
                with self._lock:
                    self._pending -= 1
                job.done.set()

    def _answer(self, request):
        msg, snapshot = self._snapshot()
        try:
            result = answer_query(query_request_from_msg(request), self.config, snapshot, self.backend, self.templates)
        except Exception as error:  # the service must answer whatever goes wrong
            self.get_logger().error(f'scene query failed: {error!r}')
            result = QueryResult(error_code=ErrorCode.MODEL, message=f'internal error: {error!r}')
        return msg, result

    def _on_query(self, request, response):
        started = self._last_query_s = time.monotonic()
        if request.task == 'objects' or self.backend is None:
            msg, result = self._answer(request)  # no model: answered here at once
        else:
            with self._lock:
                busy = self._pending >= self.config.max_pending
                limited = not busy and not self._rate_limit.admit(time.monotonic())
                if not busy and not limited:
                    self._pending += 1
            if busy:
                msg, result = (
                    self._snapshot_msg,
                    QueryResult(
                        ErrorCode.BUSY,
                        f'busy: {self.config.max_pending} queries are already waiting or running '
                        '(parameter max_pending); try again later',
                    ),
                )
            elif limited:
                msg, result = (
                    self._snapshot_msg,
                    QueryResult(
                        ErrorCode.BUSY,
                        f'rate limit: more than {self.config.max_queries_per_minute} queries in the '
                        'last minute (parameter max_queries_per_minute); try again later',
                    ),
                )
            else:
                job = _Job(request)
                self._jobs.put(job)
                if job.done.wait(self.config.query_timeout_s):
                    msg, result = job.result
                else:
                    msg, result = (
                        self._snapshot_msg,
                        QueryResult(
                            ErrorCode.MODEL,
                            f'timed out after {self.config.query_timeout_s:.0f} s (parameter '
                            'query_timeout_s); the model is still working on it',
                        ),
                    )
        response.map_stamp = msg.header.stamp
        fill_query_response(result, response, {m.id: m for m in msg.instances})
        if not result.success:
            self.get_logger().warning(
                f'query (task={request.task[:40]!r}) refused after {time.monotonic() - started:.2f} s: {result.message}'
            )
        return response


def main(args=None) -> int:
    return run_node(
        QueryNode,
        lambda node: spin_multi_threaded(node, num_threads=node.config.max_pending + 3, on_ready=node.log_serving),
        args,
    )


if __name__ == '__main__':
    raise SystemExit(main())
