"""A local ``transformers`` VLM (Qwen2-VL, Qwen2.5-VL, GPT4Scene's fine-tuned checkpoint, ...):
``AutoModelForImageTextToText`` with its ``AutoProcessor`` and chat template, loaded once and kept warm."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from gpt4scene_ros.query.backends.base import ImageCache, VlmBackend, VlmError, VlmSetupError
from gpt4scene_ros.query.prompts import Prompt

logger = logging.getLogger(__name__)

DTYPES = ('auto', 'bfloat16', 'float16', 'float32')
_QWEN_PROCESSORS = ('Qwen2VLProcessor', 'Qwen2_5_VLProcessor')


def _processor_class_name(model: str) -> str:
    for name in ('processor_config.json', 'preprocessor_config.json'):
        path = Path(model) / name
        if path.is_file():
            try:
                record = json.loads(path.read_text())
            except ValueError:
                continue
            if isinstance(record, dict) and record.get('processor_class'):
                return str(record['processor_class'])
    return ''


def load_processor(model: str) -> Any:
    """``AutoProcessor.from_pretrained(model)``; where that fails only because a Qwen-VL processor also builds a
    video processor (which needs torchvision), the same processor class is assembled from the checkpoint's image
    processor and tokenizer, images only."""
    import transformers

    try:
        return transformers.AutoProcessor.from_pretrained(model)
    except Exception as error:  # the video processor lookup raises AttributeError/ImportError without torchvision
        name = _processor_class_name(model)
        if name not in _QWEN_PROCESSORS:
            raise
        logger.info('AutoProcessor failed (%r): building %s for images only', error, name)
        tokenizer = transformers.AutoTokenizer.from_pretrained(model)
        image_processor = transformers.AutoImageProcessor.from_pretrained(model)
        processor_class = getattr(transformers, name)
        processor = processor_class.__new__(processor_class)
        template = Path(model) / 'chat_template.jinja'
        processor.chat_template = template.read_text() if template.is_file() else tokenizer.chat_template
        processor.image_token, processor.video_token = '<|image_pad|>', '<|video_pad|>'
        processor.image_token_id = tokenizer.convert_tokens_to_ids(processor.image_token)
        processor.video_token_id = tokenizer.convert_tokens_to_ids(processor.video_token)
        processor.tokenizer, processor.image_processor, processor.video_processor = tokenizer, image_processor, None
        return processor


class CachedImageProcessor:
    """A Qwen-VL image processor that processes each image once (:class:`ImageCache`): the processor resizes,
    normalises and cuts every image into patches on its own and concatenates them (``pixel_values``,
    ``image_grid_thw``), so a prompt's images can be processed one by one, kept, and joined per query. Everything
    else is the wrapped processor's."""

    def __init__(self, image_processor: Any) -> None:
        self.inner = image_processor
        self.cache: ImageCache[Any] = ImageCache(self._process_one)
        self._kwargs: dict = {}

    def _process_one(self, image: np.ndarray) -> Any:
        return self.inner(images=[image], **self._kwargs)

    def __call__(self, images: Any = None, **kwargs: Any) -> Any:
        import torch
        from transformers import BatchFeature

        if kwargs != self._kwargs:  # the processor's settings changed: what was kept no longer holds
            self.cache.clear()
            self._kwargs = dict(kwargs)
        parts = [self.cache.get(np.asarray(image)) for image in images]
        joined = {key: torch.cat([part[key] for part in parts]) for key in ('pixel_values', 'image_grid_thw')}
        return BatchFeature(joined)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TransformersBackend(VlmBackend):
    """A local VLM through ``transformers``.

    ``model``: folder or hub id; ``dtype``: one of :data:`DTYPES`; ``device``:
    ``cuda``, ``cuda:N``, ``cpu`` or ``auto`` (CUDA when available);
    ``attn_implementation``: e.g. ``sdpa``, ``flash_attention_2``, or empty for
    the library's choice; ``load_in_4bit``: bitsandbytes 4-bit weights (CUDA,
    Jetson-class memory); ``cpu_threads``: torch threads on the CPU (0: all cores
    but one). Raises VlmSetupError naming the parameter when the
    model cannot be loaded.
    """

    name = 'transformers'

    def __init__(
        self,
        model: str,
        *,
        dtype: str = 'auto',
        device: str = 'auto',
        attn_implementation: str = '',
        max_new_tokens: int = 128,
        load_in_4bit: bool = False,
        cpu_threads: int = 0,
    ) -> None:
        if not model:
            raise VlmSetupError(
                'parameter model is empty: give a model folder or hub id (e.g. '
                'alexzyqi/GPT4Scene-qwen2vl_full_sft_mark_32_3D_img512)'
            )
        if dtype not in DTYPES:
            raise VlmSetupError(f'parameter dtype={dtype!r}: expected one of {list(DTYPES)}')
        try:
            import torch
            import transformers
        except ImportError as error:
            raise VlmSetupError(f'backend transformers needs torch and transformers installed: {error}') from None
        self.torch = torch
        if device == 'auto':
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        if device.startswith('cuda') and not torch.cuda.is_available():
            raise VlmSetupError(f'parameter device={device!r}: this torch has no CUDA device; use cpu or auto')
        self.device = device
        if device == 'cpu':
            # torch takes every core by default: on a robot's CPU that starves the mapping node.
            torch.set_num_threads(cpu_threads or max(1, (os.cpu_count() or 1) - 1))
        self.max_new_tokens = int(max_new_tokens)
        kwargs = {'dtype': 'auto' if dtype == 'auto' else getattr(torch, dtype)}
        if attn_implementation:
            kwargs['attn_implementation'] = attn_implementation
        if load_in_4bit:
            if not device.startswith('cuda'):
                raise VlmSetupError('parameter load_in_4bit needs a CUDA device (bitsandbytes)')
            try:
                kwargs['quantization_config'] = transformers.BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_compute_dtype=torch.float16 if dtype == 'auto' else kwargs['dtype']
                )
            except Exception as error:
                raise VlmSetupError(f'parameter load_in_4bit: bitsandbytes is not usable here: {error}') from None
            kwargs['device_map'] = device
        try:
            self.model = transformers.AutoModelForImageTextToText.from_pretrained(model, **kwargs)
            if not load_in_4bit:
                # transformers wraps PreTrainedModel.to with functools.wraps, whose stub loses the bound self
                self.model = self.model.to(device)
            self.model.eval()
            self.processor = load_processor(model)
        except VlmSetupError:
            raise
        except Exception as error:
            raise VlmSetupError(
                f'parameter model={model!r} does not load as an image-text-to-text model: '
                f'{type(error).__name__}: {error}'
            ) from None
        self.model_name = model
        config = self.model.config
        self.image_token_id = getattr(config, 'image_token_id', None)
        image_processor = getattr(self.processor, 'image_processor', None)
        patch, merge = getattr(image_processor, 'patch_size', None), getattr(image_processor, 'merge_size', None)
        if isinstance(patch, int) and isinstance(merge, int) and patch > 0 and merge > 0:
            self.image_size_multiple = patch * merge
        self.image_cache: ImageCache | None = None
        if type(self.processor).__name__ in _QWEN_PROCESSORS and image_processor is not None:
            cached = CachedImageProcessor(image_processor)
            self.processor.image_processor = cached
            self.image_cache = cached.cache

    def preprocess(self, prompt: Prompt) -> Any:
        images: list[Any] = list(prompt.images)
        if self.image_cache is None:  # other processors take PIL images, each processed per query
            from PIL import Image

            images = [Image.fromarray(np.ascontiguousarray(image)) for image in images]
        messages = prompt.messages(lambda k, image: {'type': 'image'})
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=[text], images=images or None, return_tensors='pt')
        return inputs.to(self.device)

    def generate(self, inputs: Any, timeout_s: float) -> str:
        try:
            with self.torch.inference_mode():
                output = self.model.generate(
                    **inputs, max_new_tokens=self.max_new_tokens, do_sample=False, max_time=float(timeout_s)
                )
        except Exception as error:
            raise VlmError(f'the model failed: {type(error).__name__}: {error}') from None
        new_tokens = output[:, inputs['input_ids'].shape[1] :]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)[0]

    def prepare_images(self, images: tuple) -> None:
        if self.image_cache is not None:
            self.preprocess(Prompt(tuple(images), ''))  # the processor's own settings; the images stay cached

    def token_counts(self, inputs: Any) -> tuple[int, int]:
        ids = inputs['input_ids']
        images = int((ids == self.image_token_id).sum()) if self.image_token_id is not None else 0
        return int(ids.shape[1]), images

    def warm_up(self) -> None:
        budget, self.max_new_tokens = self.max_new_tokens, 1
        try:
            self.answer(Prompt((np.zeros((56, 56, 3), np.uint8),), 'Hello.'), timeout_s=120.0)
        finally:
            self.max_new_tokens = budget
