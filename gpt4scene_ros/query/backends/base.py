"""The small interface every VLM backend implements: preprocess, generate (the only step that touches the model),
postprocess."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from gpt4scene_ros.query.prompts import Prompt


class VlmSetupError(RuntimeError):
    """A backend cannot start (missing model, broken checkpoint, unset API key variable); the message names the
    parameter to fix."""


class VlmError(RuntimeError):
    """A backend failed on one request (the model raised, timed out, the endpoint answered an error)."""


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
