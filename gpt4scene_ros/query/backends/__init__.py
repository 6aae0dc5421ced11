"""VLM backends behind one interface (:class:`~gpt4scene_ros.query.backends.base.VlmBackend`)."""

from __future__ import annotations

from gpt4scene_ros.common.settings.query import VLM_BACKENDS as BACKENDS
from gpt4scene_ros.common.settings.query import QueryConfig
from gpt4scene_ros.query.backends.base import Generation, VlmBackend, VlmError, VlmSetupError

__all__ = ['BACKENDS', 'Generation', 'VlmBackend', 'VlmError', 'VlmSetupError', 'make_backend']


def make_backend(config: QueryConfig) -> VlmBackend | None:
    """The backend a :class:`gpt4scene_ros.common.settings.query.QueryConfig` asks for (None for ``none``);
    VlmSetupError naming the parameter when it cannot start."""
    if config.backend == 'none':
        return None
    if config.backend == 'transformers':
        from gpt4scene_ros.query.backends.local_transformers import TransformersBackend

        return TransformersBackend(
            config.model,
            dtype=config.dtype,
            device=config.device,
            attn_implementation=config.attn_implementation,
            max_new_tokens=config.max_new_tokens,
            load_in_4bit=config.load_in_4bit,
            cpu_threads=config.cpu_threads,
        )
    if config.backend == 'openai':
        from gpt4scene_ros.query.backends.openai_http import OpenAIBackend

        return OpenAIBackend(
            config.base_url,
            config.model,
            api_key_env=config.api_key_env,
            timeout_s=config.request_timeout_s,
            retries=config.retries,
            max_new_tokens=config.max_new_tokens,
        )
    raise VlmSetupError(f'parameter backend={config.backend!r}: expected one of {list(BACKENDS)}')
