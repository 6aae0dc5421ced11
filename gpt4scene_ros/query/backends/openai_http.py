"""An OpenAI-compatible chat-completions endpoint (vLLM, SGLang, llama.cpp server, a hosted model): the robot
maps, a GPU server answers; several robots can share one server.

Images go as base64 ``data:`` URLs (JPEG, quality 95), encoded once per snapshot image. The API key is read from
the environment variable *named* by ``api_key_env`` and only ever put in the
``Authorization`` header: it is never logged and never part of an error
message.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from gpt4scene_ros.query.backends.base import ImageCache, VlmBackend, VlmError, VlmSetupError
from gpt4scene_ros.query.prompts import Prompt

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)


def image_data_url(image_rgb: np.ndarray) -> str:
    ok, data = cv2.imencode(
        '.jpg', cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
    )
    if not ok:
        raise VlmError(f'could not encode an image of shape {image_rgb.shape}')
    return 'data:image/jpeg;base64,' + base64.b64encode(data.tobytes()).decode('ascii')


class OpenAIBackend(VlmBackend):
    """``base_url`` (e.g. http://gpu-server:8000/v1), ``model`` (the served model's name), ``api_key_env`` (name of
    the variable holding the key; empty for none), ``timeout_s`` per attempt, ``retries`` with exponential
    backoff from ``backoff_s`` on connection errors, HTTP 429 and 5xx."""

    name = 'openai'

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = '',
        timeout_s: float = 60.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        max_new_tokens: int = 128,
    ) -> None:
        try:
            import httpx
        except ImportError as error:
            raise VlmSetupError(f'backend openai needs httpx installed: {error}') from None
        if not base_url.startswith(('http://', 'https://')):
            raise VlmSetupError(f'parameter base_url={base_url!r}: expected http:// or https://...')
        if not model:
            raise VlmSetupError('parameter model is empty: give the name the server serves the model under')
        self._headers = {'Content-Type': 'application/json'}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise VlmSetupError(f'parameter api_key_env={api_key_env!r}: that environment variable is not set')
            self._headers['Authorization'] = f'Bearer {key}'
        self.httpx = httpx
        self.url = base_url.rstrip('/') + '/chat/completions'
        self.model_name = model
        self.timeout_s, self.retries, self.backoff_s = float(timeout_s), int(retries), float(backoff_s)
        self.max_new_tokens = int(max_new_tokens)
        self.client = httpx.Client()
        self.image_urls = ImageCache(image_data_url)

    def preprocess(self, prompt: Prompt) -> dict[str, Any]:
        messages = prompt.messages(
            lambda k, image: {'type': 'image_url', 'image_url': {'url': self.image_urls.get(image)}}
        )
        return {'model': self.model_name, 'messages': messages, 'max_tokens': self.max_new_tokens, 'temperature': 0.0}

    def generate(self, inputs: dict[str, Any], timeout_s: float) -> str:
        deadline = time.monotonic() + float(timeout_s)
        attempt, last_error = 0, 'no attempt'
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise VlmError(f'{self.url}: no answer within {timeout_s:.1f} s ({last_error})')
            try:
                reply = self.client.post(
                    self.url, json=inputs, headers=self._headers, timeout=min(self.timeout_s, remaining)
                )
            except self.httpx.TimeoutException:
                last_error = 'timed out'
            except self.httpx.HTTPError as error:
                last_error = f'{type(error).__name__}: {error}'
            else:
                if reply.status_code == 200:
                    return self._text_of(reply)
                last_error = f'HTTP {reply.status_code}: {reply.text[:200]}'
                if reply.status_code != 429 and reply.status_code < 500:
                    raise VlmError(f'{self.url} refused the request: {last_error}')
            if attempt >= self.retries:
                raise VlmError(f'{self.url}: {last_error} (after {attempt + 1} attempts)')
            time.sleep(min(self.backoff_s * 2**attempt, max(0.0, deadline - time.monotonic())))
            attempt += 1

    def _text_of(self, reply: httpx.Response) -> str:
        try:
            record = reply.json()
            content = record['choices'][0]['message']['content']
        except (ValueError, KeyError, IndexError, TypeError):
            raise VlmError(
                f'{self.url} answered something that is not a chat completion: {reply.text[:200]!r}'
            ) from None
        if isinstance(content, list):  # some servers answer content parts
            content = ''.join(part.get('text', '') for part in content if isinstance(part, dict))
        if not isinstance(content, str):
            raise VlmError(f'{self.url} answered a chat completion without text: {reply.text[:200]!r}')
        return content

    def prepare_images(self, images: tuple) -> None:
        for image in images:
            self.image_urls.get(image)

    def warm_up(self) -> None:
        """Checks that the endpoint answers (a failure here is logged, not fatal: the server may start later)."""
        try:
            self.answer(Prompt((np.zeros((56, 56, 3), np.uint8),), 'Hello.'), timeout_s=self.timeout_s)
        except VlmError as error:
            logger.warning('the endpoint did not answer the warm-up request: %s', error)
