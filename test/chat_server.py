"""Test helper (not a product): an OpenAI-compatible chat-completions server that answers with a real local
backend (a tiny random model), with switches to misbehave like a failing server."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from gpt4scene_ros.query.prompts import Prompt


def decode_data_url(url: str) -> np.ndarray:
    header, data = url.split(',', 1)
    assert header.startswith('data:image/') and header.endswith(';base64'), header
    bgr = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class ChatServer:
    """``mode``: ok | error500 | error400 | nonjson | slow | empty | die (after ``slow_s``, drop the connection
    unanswered and shut the server down, as a crashed endpoint does). Records every request it got."""

    def __init__(self, backend, api_key: str = '', slow_s: float = 5.0):
        self.backend, self.api_key, self.slow_s = backend, api_key, slow_s
        self.mode = 'ok'
        self.requests = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
                with server.lock:
                    server.requests.append({'path': self.path, 'headers': dict(self.headers), 'body': body})
                if self.path != '/v1/chat/completions':
                    return self._reply(404, b'{"error": "not found"}')
                if server.api_key and self.headers.get('Authorization') != f'Bearer {server.api_key}':
                    return self._reply(401, b'{"error": "bad key"}')
                mode = server.mode
                if mode == 'error500':
                    return self._reply(500, b'{"error": "boom"}')
                if mode == 'error400':
                    return self._reply(400, b'{"error": "bad request"}')
                if mode == 'nonjson':
                    return self._reply(200, b'<html>proxy error</html>')
                if mode == 'slow':
                    time.sleep(server.slow_s)
                if mode == 'die':
                    time.sleep(server.slow_s)
                    threading.Thread(target=server.close, daemon=True).start()
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                request = json.loads(body)
                text, images, system = '', [], ''
                for message in request['messages']:
                    if message['role'] == 'system':
                        system = message['content']
                        continue
                    if isinstance(message['content'], str):  # the API's plain-text form
                        text = message['content']
                        continue
                    for part in message['content']:
                        if part['type'] == 'image_url':
                            images.append(decode_data_url(part['image_url']['url']))
                        elif part['type'] == 'text':
                            text = part['text']
                prompt = Prompt(tuple(images), text, system)
                answer = '' if mode == 'empty' else server.backend.answer(prompt, 60.0).text
                reply = {
                    'id': 'test',
                    'object': 'chat.completion',
                    'model': request['model'],
                    'choices': [
                        {'index': 0, 'message': {'role': 'assistant', 'content': answer}, 'finish_reason': 'stop'}
                    ],
                }
                self._reply(200, json.dumps(reply).encode())

            def _reply(self, status, data: bytes):
                try:
                    self.send_response(status)
                    self.send_header('Content-Type', 'application/json')
                    self.send_header('Content-Length', str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f'http://127.0.0.1:{self.httpd.server_address[1]}/v1'

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
