"""Settings of the query node (VLM backend, prompts, admission)."""

from __future__ import annotations

from dataclasses import dataclass

from gpt4scene_ros.common.settings.spec import check_settings, setting

QUERY_TASKS = ('qa', 'ground', 'multi_ground', 'caption', 'objects')
VLM_BACKENDS = ('none', 'transformers', 'openai')


@dataclass(frozen=True)
class QueryConfig:
    """Settings of the ``query_node``."""

    max_question_chars: int = setting(
        2000, 'Longest question (and situation) accepted, in characters.', minimum=1, maximum=1_000_000, read_only=True
    )
    max_object_ids: int = setting(256, 'Most object ids accepted in one request.', minimum=1, read_only=True)
    default_num_frames: int = setting(
        8, 'Keyframes given to the model when a request asks for 0.', minimum=0, maximum=32, read_only=True
    )
    max_num_frames: int = setting(32, 'Most keyframes a request may ask for.', minimum=0, maximum=32, read_only=True)
    # The model.
    backend: str = setting(
        'none',
        'VLM backend: none (only task objects), transformers (a local model) or '
        'openai (an OpenAI-compatible chat-completions server: vLLM, SGLang, llama.cpp, a '
        'hosted model).',
        choices=VLM_BACKENDS,
        read_only=True,
    )
    model: str = setting(
        '',
        'transformers: model folder or hub id (e.g. '
        'alexzyqi/GPT4Scene-qwen2vl_full_sft_mark_32_3D_img512, Qwen/Qwen2.5-VL-7B-Instruct); '
        'openai: the name the server serves the model under.',
        read_only=True,
    )
    dtype: str = setting(
        'auto',
        'transformers: weight dtype (auto, bfloat16, float16, float32).',
        choices=('auto', 'bfloat16', 'float16', 'float32'),
        read_only=True,
    )
    device: str = setting(
        'auto', 'transformers: torch device (auto: CUDA when available; cuda, cuda:0, cpu).', read_only=True
    )
    attn_implementation: str = setting(
        '',
        "transformers: attention implementation (sdpa, flash_attention_2, eager; empty: the library's choice).",
        read_only=True,
    )
    load_in_4bit: bool = setting(
        False, 'transformers: 4-bit weights with bitsandbytes (CUDA; Jetson-class memory).', read_only=True
    )
    max_new_tokens: int = setting(
        128, 'Longest answer, in tokens (GPT4Scene uses 128).', minimum=1, maximum=8192, read_only=True
    )
    cpu_threads: int = setting(
        0,
        'transformers on the CPU: torch threads (0: all cores but one, so that a '
        'mapping node on the same machine keeps a core).',
        minimum=0,
        maximum=1024,
        read_only=True,
    )
    base_url: str = setting('', 'openai: base URL of the server, e.g. http://gpu-server:8000/v1.', read_only=True)
    api_key_env: str = setting(
        '',
        'openai: NAME of the environment variable holding the API key (the key itself '
        'is never a parameter, never logged); empty for a server without a key.',
        read_only=True,
    )
    request_timeout_s: float = setting(
        60.0, 'openai: time limit of one HTTP attempt, seconds.', greater_than=0.0, maximum=3600.0, read_only=True
    )
    retries: int = setting(
        2,
        'openai: further attempts after a connection error, HTTP 429 or 5xx (exponential backoff from 0.5 s).',
        minimum=0,
        maximum=10,
        read_only=True,
    )
    warm_up: bool = setting(
        True, 'Send one small request at start-up, so the first query is not slower.', read_only=True
    )
    # The prompt and the service.
    image_side_px: int = setting(
        512,
        'Images go to the model with their longest side at most this (GPT4Scene: '
        '512); markers are redrawn at that size.',
        minimum=64,
        maximum=4096,
        read_only=True,
    )
    image_size_multiple: int = setting(
        0,
        "Image sides are made multiples of this, so the model's processor "
        "resizes nothing (0: the local model's patch grid, e.g. 28 for Qwen2-VL; "
        '1 for a server; set 28 for a Qwen-VL behind vLLM).',
        minimum=0,
        maximum=256,
        read_only=True,
    )
    zero_shot: bool = setting(
        False,
        'Add the instruction explaining the BEV, the markers and the <OBJ###> format '
        '(for models not fine-tuned on marked scenes).',
        read_only=True,
    )
    prompt_templates_file: str = setting(
        '', "YAML file of the task templates (empty: the package's config/prompts.yaml).", read_only=True
    )
    query_timeout_s: float = setting(
        120.0,
        'A query not answered within this (waiting included) fails with a message, seconds.',
        greater_than=0.0,
        maximum=3600.0,
        read_only=True,
    )
    max_queries_per_minute: int = setting(
        120,
        'Model queries admitted in any 60 s, from all clients together; more '
        'are refused at once with ERROR_BUSY (0: no limit). task=objects is '
        'not counted.',
        minimum=0,
        maximum=100000,
        read_only=True,
    )
    max_pending: int = setting(
        4, 'Queries waiting or running at most; more are refused at once.', minimum=1, maximum=64, read_only=True
    )
    prepare_ahead_s: float = setting(
        60.0,
        'For this long after a query, each new scene snapshot is decoded and the images of a default query (the '
        'marked BEV and default_num_frames keyframes, fitted and encoded for the model) are prepared as it '
        'arrives, so the next query does not wait for them; 0 = prepare only when asked, seconds.',
        minimum=0.0,
        maximum=86400.0,
        read_only=True,
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if self.default_num_frames > self.max_num_frames:
            raise ValueError(
                f'QueryConfig.default_num_frames={self.default_num_frames}: must be <= '
                f'max_num_frames={self.max_num_frames}'
            )
