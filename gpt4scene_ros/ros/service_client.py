"""Call a ROS 2 service and wait for its response, sending the request again when the response was lost.

A request sent just after discovery can lose its response: ``service_is_ready``
only says the server's request reader has matched the client, and the server
may not have matched the client's response reader yet, so the server answers
into nothing. An unanswered request is therefore removed and sent again every
``resend_s`` until the time limit. :func:`call_service` is that loop, for
``gpt4scene-ask``, the demo and the tests alike. Nothing here imports rclpy:
it works on the ``Client`` it is given.
"""

from __future__ import annotations

import time


class ServiceCallError(RuntimeError):
    """The service gave no response; ``service`` names it, ``timeout_s`` is the limit that ran out."""

    def __init__(self, message: str, service: str, timeout_s: float):
        super().__init__(message)
        self.service = service
        self.timeout_s = timeout_s


class ServiceNotReady(ServiceCallError):
    """No server of the service was discovered within the time limit (nothing was sent)."""


class ServiceWentAway(ServiceCallError):
    """The server disappeared while a request was pending (only with ``give_up_when_gone``)."""


class ServiceTimeout(ServiceCallError):
    """The server was there, but no response came within the time limit (the request was sent again meanwhile)."""


def call_service(
    client,
    request,
    timeout_s: float,
    *,
    ready_timeout_s: float | None = None,
    resend_s: float = 30.0,
    executor=None,
    poll_s: float | None = None,
    give_up_when_gone: bool = False,
    check=None,
):
    """Send ``request`` with ``client`` (an rclpy ``Client``) and return the response.

    Waits for the server to be discovered, sends the request, and while no
    response has come sends it again every ``resend_s`` seconds (the pending
    request is removed first, so a late response to it is ignored).

    ``timeout_s``
        how long to wait for a response. With ``ready_timeout_s=None`` (one
        deadline, as ``gpt4scene-ask --timeout``) discovery counts against it.
    ``ready_timeout_s``
        how long to wait for the server to be discovered; the ``timeout_s``
        for the response then starts once it is.
    ``executor``
        spun with ``spin_once(timeout_sec=poll_s)`` while waiting, when the
        caller spins the client's node itself; ``None`` when the node is spun
        elsewhere (e.g. an executor thread): then the loop only sleeps ``poll_s``.
    ``poll_s``
        default 0.1 s with an executor, 0.01 s without.
    ``give_up_when_gone``
        raise :class:`ServiceWentAway` as soon as the server disappears while
        a request is pending (its node stopped), instead of sending again.
    ``check``
        called at every poll; whatever it raises aborts the call (e.g. "the
        graph stopped"), after the pending request is removed.

    Raises :class:`ServiceNotReady`, :class:`ServiceWentAway` or :class:`ServiceTimeout`
    (all :class:`ServiceCallError`) with a message naming the service.
    """
    if poll_s is None:
        poll_s = 0.1 if executor is not None else 0.01
    service = client.srv_name

    def wait():
        if check is not None:
            check()
        if executor is not None:
            executor.spin_once(timeout_sec=poll_s)
        else:
            time.sleep(poll_s)

    started = time.monotonic()
    ready_limit = timeout_s if ready_timeout_s is None else ready_timeout_s
    while not client.service_is_ready():
        if time.monotonic() > started + ready_limit:
            raise ServiceNotReady(f'no service {service} answered within {ready_limit:g} s', service, ready_limit)
        wait()
    deadline = (started if ready_timeout_s is None else time.monotonic()) + timeout_s
    while True:
        future = client.call_async(request)
        attempt_end = min(deadline, time.monotonic() + resend_s)
        try:
            while not future.done() and time.monotonic() < attempt_end:
                if give_up_when_gone and not client.service_is_ready():
                    break
                wait()
        finally:
            if not future.done():
                client.remove_pending_request(future)
        if future.done():
            return future.result()
        if give_up_when_gone and not client.service_is_ready():
            raise ServiceWentAway(f'{service} went away before answering (its node stopped?)', service, timeout_s)
        if time.monotonic() >= deadline:
            raise ServiceTimeout(f'{service} did not answer within {timeout_s:g} s', service, timeout_s)
