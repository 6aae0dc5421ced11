"""The small interface every VLM backend implements: preprocess, generate (the only step that touches the model),
postprocess."""

from __future__ import annotations

import functools
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from gpt4scene_ros.query.prompts import Prompt


class VlmSetupError(RuntimeError):
    """A backend cannot start (missing model, broken checkpoint, unset API key variable); the message names the
    parameter to fix."""


class VlmError(RuntimeError):
    """A backend failed on one request (the model raised, timed out, the endpoint answered an error)."""


_V = TypeVar('_V')


class ImageCache(Generic[_V]):
    """``compute(image)`` once per image that stays as it is: a snapshot's marked images are read-only arrays
    shared by every query of that snapshot, so what a backend makes of them (encoded JPEGs, the processor's
    patches) is made once. Keyed by the array itself (identity, checked through a weak reference) and forgotten
    with it; a writable array may change and is never cached."""

    def __init__(self, compute: Callable[[np.ndarray], _V]) -> None:
        self.compute = compute
        self._entries: dict[int, tuple[weakref.ref, _V]] = {}
        self._lock = threading.Lock()
        self.misses = 0

    def get(self, image: np.ndarray) -> _V:
        if image.flags.writeable:
            return self.compute(image)
        key = id(image)
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0]() is image:
            return entry[1]
        value = self.compute(image)
        self.misses += 1
        with self._lock:
            self._entries[key] = (weakref.ref(image, functools.partial(self._forget, key)), value)
        return value

    def _forget(self, key: int, _dead: weakref.ref) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class Generation:
    """A backend's answer with where the time went."""

    text: str
    prepare_ms: float
    model_ms: float
    input_tokens: int = 0
    image_tokens: int = 0


class VlmBackend(ABC):
    """preprocess (prompt -> model inputs) / generate (inputs -> raw text) / postprocess (raw text -> answer)."""

    name = 'backend'
    image_size_multiple = 1
    """Image sides that the model's processor keeps as they are are multiples of this (its patch grid)."""

    @abstractmethod
    def preprocess(self, prompt: Prompt) -> Any:
        """Model inputs for ``prompt`` (no model call)."""

    @abstractmethod
    def generate(self, inputs: Any, timeout_s: float) -> str:
        """The model's raw output for ``inputs``; VlmError when the model fails or runs past ``timeout_s``."""

    def postprocess(self, raw: str) -> str:
        return raw.strip()

    def token_counts(self, inputs: Any) -> tuple[int, int]:
        """(input tokens, of which image tokens), when the backend knows them; (0, 0) otherwise."""
        return 0, 0

    def answer(self, prompt: Prompt, timeout_s: float) -> Generation:
        started = time.perf_counter()
        inputs = self.preprocess(prompt)
        prepared = time.perf_counter()
        raw = self.generate(inputs, timeout_s)
        done = time.perf_counter()
        total, images = self.token_counts(inputs)
        return Generation(
            self.postprocess(raw), (prepared - started) * 1000.0, (done - prepared) * 1000.0, total, images
        )

    def warm_up(self) -> None:
        """One small request, so that the first real query does not pay for lazy initialisation."""

    def prepare_images(self, images: tuple) -> None:
        """Make ahead what :meth:`preprocess` will need of these images (cached per image; nothing by default), so
        that a query about a snapshot prepared on arrival does not wait for it."""
