"""The object layer in a child process, so that its updates do not share the mapping process's GIL.

Measured on the 7-Scenes kitchen with the player at 30 Hz on two cores (BENCHMARKS.md, issue 9): one
:meth:`SceneObjects.update` takes 0.5 s alone, 4.7 s in a thread next to the integrating map thread (both take
the GIL back thousands of times per second) and 0.9 s in a process of its own under the same load.

:class:`ObjectsProcess` offers what the mapping node needs of :class:`SceneObjects`:

- :meth:`ObjectsProcess.observe` (map thread): the motion test runs here; a new candidate is queued for a
  sender thread and the call returns at once, whatever the child does;
- :meth:`ObjectsProcess.update`, :meth:`state`, :meth:`restore`, :meth:`reset`: one request at a time, the
  caller waits for the answer (at most ``timeout_s``).

A child that dies or stops answering raises :class:`ObjectsWorkerError`; :meth:`restart` starts a fresh one that
continues the ID counter (IDs are never reused; the instances are rebuilt from the map).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import multiprocessing.connection
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from gpt4scene_ros.common.frames import CameraIntrinsics
from gpt4scene_ros.common.masks import FrameMasks
from gpt4scene_ros.common.memory import return_freed_memory
from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.common.settings.mapping import MappingConfig
from gpt4scene_ros.objects.keyframes import FrameView
from gpt4scene_ros.objects.scene_objects import CandidateGate, ObjectsSnapshot, SceneObjects
from gpt4scene_ros.objects.segmentation.masks import MASK_COUNTS

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0
"""Start-up of the child: imports, plus loading a detector's model when one is configured."""
SEND_QUEUE_SIZE = 8
"""Candidates waiting for the sender thread; the oldest is dropped when the child falls behind."""


class ObjectsWorkerError(RuntimeError):
    """The object-layer process died, failed to start or did not answer in time."""


class ObjectsProcess:
    """:class:`SceneObjects` run in a child process (see the module docstring)."""

    def __init__(self, config: InstanceConfig, mapping: MappingConfig, timeout_s: float = 60.0) -> None:
        """Starts the child and waits until it is ready. A detector that cannot be built raises
        :class:`ObjectsWorkerError` with the child's message."""
        if not isinstance(config, InstanceConfig):
            raise TypeError(f'config must be an InstanceConfig, got {type(config).__name__}')
        self.config, self.mapping, self.timeout_s = config, mapping, float(timeout_s)
        self.gate = CandidateGate(config)
        self.counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()  # one request/answer at a time
        # Views, (stamp_s, FrameMasks) from add_masks, or None: stop the sender.
        self._outbox: collections.deque[FrameView | tuple[float, FrameMasks] | None] = collections.deque()
        self._outbox_ready = threading.Condition()
        self._next_id = 1
        self._waiting_in_worker = 0  # candidates the child had not used at its last update
        self._candidates_at_update = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._start()
        self._sender = threading.Thread(target=self._send_candidates, name='objects-sender', daemon=True)
        self._sender.start()

    # -- life cycle -----------------------------------------------------------------------------------------

    def _start(self, next_id: int = 1) -> None:
        # A fresh interpreter (not fork: this process runs DDS threads; not multiprocessing's spawn: it would
        # re-run the caller's main script), joined by two inherited descriptors.
        parent_end, child_end = socket.socketpair()
        read_fd, write_fd = os.pipe()
        code = (
            'import sys; del sys.path[0]; from gpt4scene_ros.objects.process import child_main; '
            f'child_main({child_end.fileno()}, {read_fd})'
        )
        try:
            self._process = subprocess.Popen(
                [sys.executable, '-c', code],
                pass_fds=(child_end.fileno(), read_fd),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as error:
            raise ObjectsWorkerError(f'the object-layer process could not start: {error}') from None
        finally:
            child_end.close()
            os.close(read_fd)

        self._requests = _Channel(parent_end)
        self._candidates = multiprocessing.connection.Connection(write_fd, readable=False)
        try:
            self._requests.send((self.config, self.mapping, int(next_id)), timeout_s=START_TIMEOUT_S)
        except OSError as error:
            self._stop_process(0.0)
            raise ObjectsWorkerError(f'the object-layer process could not start: {error}') from None
        try:
            status, payload = self._answer(START_TIMEOUT_S, 'start')
        except ObjectsWorkerError:
            self._stop_process(0.0)
            raise
        if status != 'ok':
            self._stop_process(2.0)
            raise ObjectsWorkerError(payload)

    def restart(self) -> None:
        """Replace a dead or stuck child by a fresh one (empty, its ID counter continued)."""
        with self._lock:
            self._stop_process(0.0)
            self.gate.reset()
            self._waiting_in_worker = 0
            self.counts['restarts'] += 1
            self._start(self._next_id)

    def close(self) -> None:
        with self._outbox_ready:
            self._outbox.append(None)
            self._outbox_ready.notify()
        with self._lock:
            if self._process is None:
                return
            try:
                self._requests.send(('stop',), timeout_s=1.0)
            except (OSError, ValueError):
                pass
            self._stop_process(2.0)

    def _stop_process(self, wait_s: float) -> None:
        process = self._process
        if process is None:
            return
        try:
            process.wait(wait_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5.0)
        for connection in (self._requests, self._candidates):
            connection.close()
        self._process = None

    @property
    def alive(self) -> bool:
        process = self._process
        return process is not None and process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # -- the map thread ---------------------------------------------------------------------------------

    def observe(
        self,
        color: npt.ArrayLike,
        depth: npt.ArrayLike,
        intrinsics: CameraIntrinsics,
        T_map_camera: np.ndarray,
        stamp_s: float,
        index: int,
        depth_scale: float = 1.0,
        masks: FrameMasks | None = None,
    ) -> bool:
        """Offer an integrated frame (with its instance masks, where given); True when it was kept as a keyframe
        candidate. Never blocks."""
        view = self.gate.offer(color, depth, intrinsics, T_map_camera, stamp_s, index, depth_scale, masks)
        if view is None:
            return False
        self.counts['candidates'] += 1
        with self._outbox_ready:
            if len(self._outbox) >= SEND_QUEUE_SIZE:
                self._outbox.popleft()
                self.counts['candidates_dropped'] += 1
            self._outbox.append(view)
            self._outbox_ready.notify()
        return True

    def add_masks(self, stamp_s: float, masks: FrameMasks) -> None:
        """Masks that came on their own (a masks topic): to the child, which fuses them with the keyframe candidate
        of their stamp (:meth:`SceneObjects.add_masks`). Never blocks."""
        with self._outbox_ready:
            if len(self._outbox) >= SEND_QUEUE_SIZE:
                dropped = self._outbox.popleft()
                self.counts['masks_dropped' if isinstance(dropped, tuple) else 'candidates_dropped'] += 1
            self._outbox.append((float(stamp_s), masks))
            self._outbox_ready.notify()

    def _send_candidates(self) -> None:
        while True:
            with self._outbox_ready:
                while not self._outbox:
                    self._outbox_ready.wait()
                view = self._outbox.popleft()
            if view is None:
                return
            try:
                self._candidates.send(view)
            except Exception:  # noqa: BLE001 - the child is gone or being replaced: the next request says so
                self.counts['candidates_dropped'] += 1
                time.sleep(0.1)

    # -- requests -------------------------------------------------------------------------------------------

    @property
    def waiting_candidates(self) -> int:
        """Keyframe candidates no update has used yet (0: the last snapshot reflects every one)."""
        return self._waiting_in_worker + self.counts['candidates'] - self._candidates_at_update

    def has_new_candidates(self) -> bool:
        """Candidates that no update has used yet (an update is worth running even if the map did not change)."""
        return self.waiting_candidates > 0

    def update(
        self,
        points: np.ndarray,
        colors: np.ndarray,
        normals: np.ndarray,
        stamp_s: float,
        map_version: int = 0,
        all_candidates: bool = False,
    ) -> ObjectsSnapshot:
        self._candidates_at_update = self.counts['candidates']
        snapshot, counts = self._request(
            'update', points, colors, normals, float(stamp_s), int(map_version), bool(all_candidates)
        )
        self._waiting_in_worker = counts.get('waiting', 0)
        self.counts['candidates_dropped_in_worker'] = counts.get('candidates_dropped', 0)
        for name in MASK_COUNTS:
            self.counts[name] = counts.get(name, 0)
        if snapshot.instances:
            self._next_id = max(self._next_id, max(i.id for i in snapshot.instances) + 1)
        return snapshot

    def state(self) -> tuple[dict, dict]:
        """(tracker state, boundary-vote arrays), as :func:`~gpt4scene_ros.mapping.map_file.save_map` stores them."""
        return self._request('state')

    def restore(self, tracker_state: dict | None, arrays: dict | None) -> int:
        """Replace the instances and votes by saved ones; the number of instances. Raises ValueError."""
        return self._request('restore', tracker_state, arrays)

    def reset(self) -> None:
        with self._outbox_ready:
            self._outbox.clear()
        self.gate.reset()
        self._request('reset')

    def _request(self, *message: Any) -> Any:
        with self._lock:
            if self._process is None:
                raise ObjectsWorkerError('the object-layer process is not running')
            try:
                self._requests.send(message, timeout_s=self.timeout_s)
            except TimeoutError:
                self._stop_process(0.0)
                raise ObjectsWorkerError(
                    f'the object-layer process did not take {message[0]} within {self.timeout_s:.0f} s'
                ) from None
            except (OSError, ValueError) as error:
                self._stop_process(0.0)
                raise ObjectsWorkerError(f'the object-layer process is gone ({error!r})') from None
            try:
                status, payload = self._answer(self.timeout_s, message[0])
            except ObjectsWorkerError:
                self._stop_process(0.0)  # a late answer must never be taken for the next request's
                raise
        if status == 'value_error':
            raise ValueError(payload)
        if status != 'ok':
            raise ObjectsWorkerError(payload)
        return payload

    def _answer(self, timeout_s: float, what: str) -> Any:
        assert self._process is not None  # callers hold a started child
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self._requests.poll(min(0.5, max(0.0, deadline - time.monotonic()))):
                    return self._requests.recv(timeout_s=max(1.0, deadline - time.monotonic()))
            except TimeoutError:
                raise ObjectsWorkerError(
                    f'the object-layer process did not finish its answer to {what} within {timeout_s:.0f} s'
                ) from None
            except (EOFError, OSError) as error:
                raise ObjectsWorkerError(
                    f'the object-layer process died during {what} ({error!r}; exit code {self._process.poll()})'
                ) from None
            if self._process.poll() is not None:
                raise ObjectsWorkerError(
                    f'the object-layer process died during {what} (exit code {self._process.returncode})'
                )
            if time.monotonic() >= deadline:
                raise ObjectsWorkerError(f'the object-layer process did not answer {what} within {timeout_s:.0f} s')


class _Channel:
    """Pickled messages over a stream socket, with timeouts (multiprocessing's Connection.send has none: a
    stopped child would block the sender for ever). Only ever between this process and its own child."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, message: object, timeout_s: float | None = None) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self.sock.settimeout(timeout_s)
        self.sock.sendall(struct.pack('!Q', len(data)))
        self.sock.sendall(data)

    def poll(self, timeout_s: float) -> bool:
        return bool(select.select([self.sock], [], [], timeout_s)[0])

    def recv(self, timeout_s: float | None = None) -> Any:
        self.sock.settimeout(timeout_s)
        (size,) = struct.unpack('!Q', self._exactly(8))
        return pickle.loads(self._exactly(size))

    def _exactly(self, size: int) -> bytearray:
        buffer = bytearray(size)
        view, done = memoryview(buffer), 0
        while done < size:
            got = self.sock.recv_into(view[done:])
            if not got:
                raise EOFError('the other end closed the channel')
            done += got
        return buffer

    def close(self) -> None:
        self.sock.close()


# -- the child --------------------------------------------------------------------------------------------------


def child_main(requests_fd: int, candidates_fd: int) -> None:
    """Entry point of the child (see :meth:`ObjectsProcess._start`): serve until the parent stops or goes."""
    requests = _Channel(socket.socket(fileno=requests_fd))
    candidates = multiprocessing.connection.Connection(candidates_fd, writable=False)
    try:
        config, mapping, next_id = requests.recv()
    except (EOFError, OSError):
        return
    _serve(requests, candidates, config, mapping, next_id)


def _serve(
    requests: _Channel,
    candidates: multiprocessing.connection.Connection,
    config: InstanceConfig,
    mapping: MappingConfig,
    next_id: int,
) -> None:
    """The child's main loop: candidates arrive on their own pipe (a thread), requests on the other."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us (or its end of the pipes closes)
    logging.basicConfig(level=logging.WARNING, format='[objects worker] %(levelname)s %(name)s: %(message)s')
    from gpt4scene_ros.objects.detectors import DetectorError, make_detector

    try:
        detector = make_detector(
            config.detector, config.detector_model, config.detector_min_score, config.detector_device
        )
        objects = SceneObjects(config, mapping, detector)
        objects.tracker.next_id = max(objects.tracker.next_id, int(next_id))
    except (DetectorError, ValueError) as error:
        requests.send(('error', f'parameter detector={config.detector!r}: {error}'))
        return
    except Exception as error:  # noqa: BLE001 - whatever stops the start-up goes to the parent
        requests.send(('error', f'the object layer could not start: {error!r}'))
        return

    def receive_candidates() -> None:
        while True:
            try:
                item = candidates.recv()
                if isinstance(item, tuple):  # (stamp_s, FrameMasks) from add_masks
                    objects.add_masks(*item)
                else:
                    objects.add_candidate(item)
            except (EOFError, OSError):
                os._exit(0)  # the parent is gone

    threading.Thread(target=receive_candidates, name='candidates', daemon=True).start()
    try:
        requests.send(('ok', None))
        _answer_requests(requests, objects)
    except OSError:  # the parent is gone (a broken pipe while answering)
        pass


def _answer_requests(requests: _Channel, objects: SceneObjects) -> None:
    while True:
        try:
            message = requests.recv()
        except (EOFError, OSError):
            return
        kind = message[0]
        if kind == 'stop':
            return
        try:
            if kind == 'update':
                snapshot = objects.update(*message[1:])
                answer = dataclasses.replace(snapshot, segmentation=None, voxel_ids=None)
                requests.send(('ok', (answer, {**objects.counts, 'waiting': objects.pending_candidates()})))
                del snapshot, answer
                return_freed_memory()  # the child crept up 65 MB over the first minutes without it
            elif kind == 'state':
                requests.send(('ok', objects.state()))
            elif kind == 'restore':
                requests.send(('ok', objects.restore(*message[1:])))
            elif kind == 'reset':
                objects.reset()
                requests.send(('ok', None))
            else:
                requests.send(('error', f'unknown request {kind!r}'))
        except ValueError as error:
            requests.send(('value_error', str(error)))
        except OSError:
            raise
        except Exception as error:  # noqa: BLE001 - the parent decides; the child keeps serving
            logger.exception('object layer %s failed', kind)
            requests.send(('error', f'{kind} failed: {error!r}'))
