"""gpt4scene_ros.ros.service_client.call_service over DDS: real std_srvs/Trigger services in nodes of the test
process (``ros_node`` is spun by an executor thread; ``idle_node``, in the same context, by nobody)."""

from __future__ import annotations

import threading
import time

import pytest
import rclpy
from conftest import wait_for
from rclpy.executors import SingleThreadedExecutor
from std_srvs.srv import Trigger

from gpt4scene_ros.ros.service_client import (
    ServiceCallError,
    ServiceNotReady,
    ServiceTimeout,
    ServiceWentAway,
    call_service,
)


def unique(name: str) -> str:
    return f'service_client_test/{name}_{time.monotonic_ns()}'


def serve(node, name: str, message: str = 'served'):
    """A Trigger server on ``node`` answering ``success=True, message``; returns (service, request times)."""
    calls = []

    def callback(request, response):
        calls.append(time.monotonic())
        response.success, response.message = True, message
        return response

    return node.create_service(Trigger, name, callback), calls


@pytest.fixture
def idle_node(ros_node):
    """A node in ``ros_node``'s context that no executor spins: its clients never take a response, its servers
    never answer, unless the test spins it."""
    node = rclpy.create_node(f'idle_{time.monotonic_ns()}', context=ros_node.context)
    yield node
    node.destroy_node()


def test_a_call_returns_the_response(ros_node):
    name = unique('normal')
    _, calls = serve(ros_node, name, 'hello')
    client = ros_node.create_client(Trigger, name)
    response = call_service(client, Trigger.Request(), 20.0)
    assert response.success and response.message == 'hello'
    assert len(calls) >= 1


def test_a_call_spins_the_executor_it_is_given(ros_node, idle_node):
    """As gpt4scene-ask and the demo do: the caller's own single-threaded executor is spun while waiting."""
    name = unique('spun')
    serve(ros_node, name, 'spun by the caller')
    client = idle_node.create_client(Trigger, name)
    executor = SingleThreadedExecutor(context=ros_node.context)
    executor.add_node(idle_node)
    try:
        response = call_service(client, Trigger.Request(), 20.0, executor=executor)
    finally:
        executor.remove_node(idle_node)
        executor.shutdown()
    assert response.success and response.message == 'spun by the caller'


def test_no_server_times_out_naming_the_service(ros_node):
    name = unique('nobody')
    client = ros_node.create_client(Trigger, name)
    started = time.monotonic()
    with pytest.raises(ServiceNotReady, match=f'no service .*{name} answered within 1 s') as error:
        call_service(client, Trigger.Request(), 1.0)
    assert 1.0 <= time.monotonic() - started < 5.0
    assert isinstance(error.value, ServiceCallError) and error.value.service.endswith(name)
    assert error.value.timeout_s == 1.0
    started = time.monotonic()
    with pytest.raises(ServiceNotReady, match='within 0.5 s'):  # discovery has its own, shorter limit
        call_service(client, Trigger.Request(), 30.0, ready_timeout_s=0.5)
    assert 0.5 <= time.monotonic() - started < 5.0


def test_a_server_that_comes_up_late_is_called(ros_node):
    name = unique('late')
    client = ros_node.create_client(Trigger, name)
    served = []
    timer = threading.Timer(1.5, lambda: served.append(serve(ros_node, name, 'late but there')))
    started = time.monotonic()
    timer.start()
    try:
        response = call_service(client, Trigger.Request(), 30.0, resend_s=2.0)
    finally:
        timer.cancel()
    assert response.success and response.message == 'late but there'
    assert time.monotonic() - started >= 1.5
    assert served and len(served[0][1]) >= 1


def test_an_unanswered_request_is_sent_again_to_a_server_that_answers(ros_node, idle_node):
    """The first server never answers (as a response lost after discovery): the request sent again after
    ``resend_s`` reaches the server that replaced it."""
    name = unique('resend')
    deaf = idle_node.create_service(Trigger, name, lambda request, response: pytest.fail('never spun'))
    client = ros_node.create_client(Trigger, name)
    wait_for(client.service_is_ready, 20.0, 'the deaf server')
    answering = []

    def replace():
        idle_node.destroy_service(deaf)
        answering.append(serve(ros_node, name, 'second time lucky'))

    timer = threading.Timer(0.5, replace)
    started = time.monotonic()
    timer.start()
    try:
        response = call_service(client, Trigger.Request(), 30.0, resend_s=2.0)
    finally:
        timer.cancel()
    assert response.success and response.message == 'second time lucky'
    assert time.monotonic() - started >= 2.0, 'answered before the request was sent again'
    assert len(answering[0][1]) == 1, 'only the request sent again reached the new server'


def test_requests_left_unanswered_are_resent_every_resend_s_until_the_timeout(ros_node, idle_node):
    """The server answers, but the client's node is never spun, so no response is ever taken."""
    name = unique('unanswered')
    _, calls = serve(ros_node, name)
    client = idle_node.create_client(Trigger, name)
    wait_for(client.service_is_ready, 20.0, 'the server')
    started = time.monotonic()
    with pytest.raises(ServiceTimeout, match=f'{name} did not answer within 3 s'):
        call_service(client, Trigger.Request(), 3.0, resend_s=1.0)
    assert 3.0 <= time.monotonic() - started < 6.0
    wait_for(lambda: len(calls) >= 3, 5.0, 'three requests at the server', details=lambda: f'{len(calls)} came')
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert all(gap > 0.5 for gap in gaps), gaps


def test_give_up_when_gone_reports_a_server_that_went_away(ros_node, idle_node):
    name = unique('gone')
    service, calls = serve(ros_node, name)
    client = idle_node.create_client(Trigger, name)  # never takes the response: the request stays pending
    wait_for(client.service_is_ready, 20.0, 'the server')
    outcome = []

    def call():
        try:
            call_service(client, Trigger.Request(), 30.0, resend_s=20.0, give_up_when_gone=True)
        except ServiceCallError as error:
            outcome.append(error)

    thread = threading.Thread(target=call, daemon=True)
    started = time.monotonic()
    thread.start()
    wait_for(lambda: calls, 10.0, 'the request at the server')
    ros_node.destroy_service(service)
    thread.join(timeout=15.0)
    assert not thread.is_alive(), 'call_service did not notice the server going away'
    assert len(outcome) == 1 and isinstance(outcome[0], ServiceWentAway), outcome
    assert 'went away before answering' in str(outcome[0])
    assert time.monotonic() - started < 15.0


class Stop(Exception):
    pass


def test_check_aborts_the_call_and_a_pending_request_is_removed(ros_node, idle_node):
    """Whatever ``check`` raises ends the call: while waiting for the server, and with a request pending."""
    client = ros_node.create_client(Trigger, unique('checked'))
    polls = []

    def check():
        polls.append(time.monotonic())
        if len(polls) == 5:
            raise Stop

    with pytest.raises(Stop):
        call_service(client, Trigger.Request(), 30.0, check=check)
    assert len(polls) == 5

    name = unique('checked_pending')
    _, calls = serve(ros_node, name)
    client = idle_node.create_client(Trigger, name)
    wait_for(client.service_is_ready, 20.0, 'the server')

    def stop_once_served():
        if calls:
            raise Stop

    with pytest.raises(Stop):
        call_service(client, Trigger.Request(), 30.0, check=stop_once_served)
    executor = SingleThreadedExecutor(context=ros_node.context)
    executor.add_node(idle_node)
    try:
        for _ in range(20):  # the response is taken now, but goes to no future: the request was removed
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.remove_node(idle_node)
        executor.shutdown()
    for sequence_number in range(3):  # the one request's number (1 here; 0 or 2 on other middlewares)
        with pytest.raises(KeyError):
            client.get_pending_request(sequence_number)
