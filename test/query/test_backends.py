"""VLM backends through the real code paths: transformers with tiny random Qwen2-VL and Qwen2.5-VL models built
from configs, and the OpenAI-compatible HTTP backend against a real HTTP server that serves the tiny model."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from chat_server import ChatServer

from gpt4scene_ros.common.settings.query import QueryConfig
from gpt4scene_ros.query.backends import VlmError, VlmSetupError, make_backend
from gpt4scene_ros.query.backends.base import ImageCache
from gpt4scene_ros.query.backends.local_transformers import TransformersBackend, load_processor
from gpt4scene_ros.query.backends.openai_http import OpenAIBackend
from gpt4scene_ros.query.prompts import Prompt

IMAGES = tuple(np.random.default_rng(k).integers(0, 255, (384, 512, 3), dtype=np.uint8) for k in range(3))


@pytest.fixture(scope='module')
def qwen2(tiny_models):
    return TransformersBackend(str(tiny_models / 'qwen2-vl'), device='cpu', max_new_tokens=12)


@pytest.mark.parametrize('family', ['qwen2-vl', 'qwen2.5-vl'])
def test_transformers_backend_answers_with_the_real_code_path(tiny_models, family):
    backend = make_backend(
        QueryConfig(backend='transformers', model=str(tiny_models / family), device='cpu', max_new_tokens=12)
    )
    backend.warm_up()
    generation = backend.answer(Prompt(IMAGES, 'Where is the mug?', 'You are a helpful assistant.'), 30.0)
    assert isinstance(generation.text, str) and generation.text
    assert generation.model_ms > 0 and generation.prepare_ms > 0
    # 512 x 384 images at patch 14, merge 2: 18 x 14 = 252 tokens each (the processor rounds to 28 px).
    assert generation.image_tokens == 3 * 252
    assert generation.input_tokens > generation.image_tokens


def test_transformers_backend_refuses_a_missing_or_broken_model_naming_the_parameter(tmp_path):
    with pytest.raises(VlmSetupError, match='parameter model is empty'):
        TransformersBackend('')
    with pytest.raises(VlmSetupError, match="parameter model='.*nowhere'"):
        TransformersBackend(str(tmp_path / 'nowhere'), device='cpu')
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'config.json').write_text('{"model_type": "qwen2_vl", "text_config": 7}')
    with pytest.raises(VlmSetupError, match='parameter model='):
        TransformersBackend(str(broken), device='cpu')
    with pytest.raises(VlmSetupError, match='parameter dtype'):
        TransformersBackend('x', dtype='int3')
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(VlmSetupError, match='parameter device'):
            TransformersBackend('x', device='cuda')
        with pytest.raises(VlmSetupError, match='load_in_4bit'):
            TransformersBackend('x', device='cpu', load_in_4bit=True)


def read_only(image: np.ndarray) -> np.ndarray:
    """A snapshot's marked images are read-only arrays: what the backends cache per image."""
    image = image.copy()
    image.flags.writeable = False
    return image


def test_image_cache_computes_once_per_unchanged_image_and_forgets_it_with_the_image():
    calls = []
    cache = ImageCache(lambda image: calls.append(1) or int(image.sum()))
    image = read_only(IMAGES[0])
    assert cache.get(image) == cache.get(image) == int(IMAGES[0].sum()) and len(calls) == 1
    same_pixels = read_only(IMAGES[0])
    assert cache.get(same_pixels) == int(IMAGES[0].sum()) and len(calls) == 2, 'keyed by the array, not its pixels'
    writable = IMAGES[1].copy()
    cache.get(writable)
    cache.get(writable)
    assert len(calls) == 4, 'an array that may change is never cached'
    assert len(cache) == 2
    del image, same_pixels
    assert len(cache) == 0, 'forgotten with the array'


def test_transformers_backend_processes_each_image_once_and_gives_the_processors_own_inputs(tiny_models, qwen2):
    """The cached per-image processing, joined per query, is exactly what the processor makes of the prompt's
    images all at once; a second query of the same images processes none again."""
    from PIL import Image

    images = tuple(read_only(image) for image in IMAGES)
    prompt = Prompt(images, 'Where is the mug?')
    misses = qwen2.image_cache.misses
    inputs = qwen2.preprocess(prompt)
    assert qwen2.image_cache.misses == misses + 3
    qwen2.preprocess(Prompt(images[::-1], 'And the table?'))
    assert qwen2.image_cache.misses == misses + 3, 'the same images are not processed again'
    processor = load_processor(str(tiny_models / 'qwen2-vl'))
    text = processor.apply_chat_template(
        prompt.messages(lambda k, image: {'type': 'image'}), add_generation_prompt=True, tokenize=False
    )
    expected = processor(text=[text], images=[Image.fromarray(image) for image in IMAGES], return_tensors='pt')
    assert set(expected) <= set(inputs)
    for key in expected:
        assert np.array_equal(inputs[key].numpy(), expected[key].numpy()), key
    qwen2.prepare_images(tuple(read_only(image) for image in IMAGES))
    assert qwen2.image_cache.misses == misses + 6, 'prepared ahead: new images are processed before any query'


@pytest.fixture
def server(qwen2):
    chat = ChatServer(qwen2, api_key='s3cret-key', slow_s=3.0)
    yield chat
    chat.close()


def test_http_backend_sends_images_as_data_urls_and_the_key_in_the_header(server, qwen2, monkeypatch):
    monkeypatch.setenv('GPT4SCENE_TEST_KEY', 's3cret-key')
    backend = OpenAIBackend(server.base_url, 'tiny', api_key_env='GPT4SCENE_TEST_KEY', timeout_s=30)
    prompt = Prompt(IMAGES, 'Where is the mug?')
    answer = backend.answer(prompt, 30.0)
    assert answer.text == qwen2.answer(prompt, 30.0).text, 'the server answers with the same model, greedily'
    request = server.requests[-1]
    assert request['headers']['Authorization'] == 'Bearer s3cret-key'
    assert b'data:image/jpeg;base64,' in request['body'] and b'"max_tokens":128' in request['body']
    shown = tuple(read_only(image) for image in IMAGES)
    backend.prepare_images(shown)
    assert backend.image_urls.misses == 3 and len(backend.image_urls) == 3
    backend.answer(Prompt(shown, 'And the table?'), 30.0)
    assert backend.image_urls.misses == 3, 'images prepared ahead are encoded once'


def test_http_backend_refuses_an_unset_key_variable_without_showing_keys(monkeypatch):
    monkeypatch.delenv('GPT4SCENE_NO_SUCH_KEY', raising=False)
    with pytest.raises(VlmSetupError, match="api_key_env='GPT4SCENE_NO_SUCH_KEY'"):
        OpenAIBackend('http://127.0.0.1:1/v1', 'tiny', api_key_env='GPT4SCENE_NO_SUCH_KEY')
    with pytest.raises(VlmSetupError, match='base_url'):
        OpenAIBackend('127.0.0.1:8000', 'tiny')
    with pytest.raises(VlmSetupError, match='model'):
        OpenAIBackend('http://127.0.0.1:8000/v1', '')


@pytest.mark.parametrize(
    'mode, words, attempts',
    [('error500', 'HTTP 500', 3), ('nonjson', 'not a chat completion', 1), ('error400', 'refused the request', 1)],
)
def test_http_backend_server_errors_are_model_errors_with_retries(server, monkeypatch, mode, words, attempts):
    monkeypatch.setenv('GPT4SCENE_TEST_KEY', 's3cret-key')
    backend = OpenAIBackend(server.base_url, 'tiny', api_key_env='GPT4SCENE_TEST_KEY', retries=2, backoff_s=0.05)
    server.mode = mode
    with pytest.raises(VlmError, match=words) as failure:
        backend.answer(Prompt(IMAGES[:1], 'hi'), 20.0)
    assert len(server.requests) == attempts
    assert 's3cret-key' not in str(failure.value)


def test_http_backend_slow_or_down_endpoint_fails_within_its_timeout(server, monkeypatch):
    monkeypatch.setenv('GPT4SCENE_TEST_KEY', 's3cret-key')
    server.mode = 'slow'
    backend = OpenAIBackend(
        server.base_url, 'tiny', api_key_env='GPT4SCENE_TEST_KEY', timeout_s=0.5, retries=5, backoff_s=0.05
    )
    started = time.monotonic()
    with pytest.raises(VlmError, match='no answer within|timed out'):
        backend.answer(Prompt(IMAGES[:1], 'hi'), 1.5)
    assert time.monotonic() - started < 3.0
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    down = OpenAIBackend(f'http://127.0.0.1:{port}/v1', 'tiny', timeout_s=0.5, retries=2, backoff_s=0.05)
    started = time.monotonic()
    with pytest.raises(VlmError, match='ConnectError|after 3 attempts'):
        down.answer(Prompt(IMAGES[:1], 'hi'), 10.0)
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize('cpu_threads', [0, 1])
def test_on_the_cpu_torch_leaves_a_core_to_the_mapping_node(tiny_models, cpu_threads):
    # torch's thread count is per process: load the model in a fresh one.
    code = (
        'import os, sys, torch; from gpt4scene_ros.common.settings.query import QueryConfig; '
        'from gpt4scene_ros.query.backends import make_backend; '
        f'make_backend(QueryConfig(backend="transformers", model=sys.argv[1], device="cpu", '
        f'cpu_threads={cpu_threads}, warm_up=False)); print(torch.get_num_threads(), os.cpu_count())'
    )
    result = subprocess.run(
        [sys.executable, '-c', code, str(tiny_models / 'qwen2-vl')], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    threads, cores = (int(v) for v in result.stdout.split()[-2:])
    assert threads == (cpu_threads or max(1, cores - 1))
