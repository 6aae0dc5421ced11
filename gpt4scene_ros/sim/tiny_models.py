"""Build tiny, randomly initialised models from configs, for tests: nothing is downloaded.

    python scripts/make_tiny_models.py OUT_DIR    (or python -m gpt4scene_ros.sim.tiny_models OUT_DIR)

Writes, loadable with ``from_pretrained`` and no network:

- ``OUT_DIR/segformer``: a SegFormer image-segmentation model (two encoder
  stages of 8 and 16 channels, three labels: chair, cup, table) with its image
  processor, for ``transformers.pipeline('image-segmentation')``;
- ``OUT_DIR/sam``: a SAM model (vision encoder of width 32, 2 layers, 256 px
  input; prompt encoder and mask decoder of width 32) with its processor, for
  the point-prompted mask generator of ``detector: transformers``;
- ``OUT_DIR/qwen2-vl`` and ``OUT_DIR/qwen2.5-vl``: Qwen2-VL and Qwen2.5-VL
  image-text-to-text models (hidden size 64, 2 layers, a 2-block vision tower
  of width 32) with a byte-level BPE tokenizer trained here on a few sentences,
  the Qwen chat format and the real Qwen2-VL image processor settings (patch
  14, merge 2), saved as the Hub checkpoints are (``processor_class``
  ``Qwen2VLProcessor`` / ``Qwen2_5_VLProcessor``).

Their outputs are random: they exercise the real transformers code path, not
the quality of a model. About 1 MB each.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TINY_LABELS = ('chair', 'cup', 'table')


def make_tiny_segmenter(folder: str | os.PathLike[str]) -> Path:
    """A tiny random SegFormer in ``folder`` (created); returns the folder."""
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    try:
        from transformers import SegformerImageProcessorPil as Processor  # no torchvision needed
    except ImportError:
        from transformers import SegformerImageProcessor as Processor
    folder = Path(folder)
    torch.manual_seed(0)
    # num_labels, id2label and label2id go to PretrainedConfig through **kwargs, which the stubs do not show.
    config = SegformerConfig(
        num_channels=3,
        num_encoder_blocks=2,
        depths=[1, 1],
        sr_ratios=[2, 1],
        hidden_sizes=[8, 16],
        patch_sizes=[7, 3],
        strides=[4, 2],
        num_attention_heads=[1, 1],
        mlp_ratios=[2, 2],
        decoder_hidden_size=16,
        num_labels=len(TINY_LABELS),
        id2label=dict(enumerate(TINY_LABELS)),
        label2id={label: k for k, label in enumerate(TINY_LABELS)},
    )
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    Processor(size={'height': 64, 'width': 64}).save_pretrained(folder)
    return folder


def make_tiny_sam(folder: str | os.PathLike[str]) -> Path:
    """A tiny random SAM in ``folder`` (created), saved as the Hub's SAM checkpoints are; returns the folder."""
    import torch
    from transformers import (
        SamConfig,
        SamMaskDecoderConfig,
        SamModel,
        SamProcessor,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    try:
        from transformers import SamImageProcessorPil as Processor  # no torchvision needed
    except ImportError:
        from transformers import SamImageProcessor as Processor
    folder = Path(folder)
    torch.manual_seed(0)
    size, patch = 256, 16
    vision = SamVisionConfig(
        hidden_size=32,
        output_channels=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        mlp_dim=64,
        image_size=size,
        patch_size=patch,
        global_attn_indexes=[1],
        window_size=4,
        num_pos_feats=16,
    )
    prompt = SamPromptEncoderConfig(hidden_size=32, image_size=size, patch_size=patch, mask_input_channels=4)
    decoder = SamMaskDecoderConfig(
        hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2, iou_head_hidden_dim=32
    )
    config = SamConfig(
        vision_config=vision.to_dict(), prompt_encoder_config=prompt.to_dict(), mask_decoder_config=decoder.to_dict()
    )
    SamModel(config).save_pretrained(folder)
    SamProcessor(Processor(size={'longest_edge': size}, pad_size={'height': size, 'width': size})).save_pretrained(
        folder
    )
    return folder


QWEN_SPECIAL_TOKENS = (
    '<|endoftext|>',
    '<|im_start|>',
    '<|im_end|>',
    '<|vision_start|>',
    '<|vision_end|>',
    '<|image_pad|>',
    '<|video_pad|>',
)
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    '{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}'
)
_CORPUS = (
    'Where is the mug? The mug is on the table next to the chair.',
    'Answer the question using a single word or phrase.',
    'Share the ID of the object that best fits the description. <OBJ001> <OBJ017> Yes. No.',
    "You are a helpful assistant. The first image is a bird's-eye view of the scene.",
    'chair table sofa cabinet shelf bed box bottle book magazine ball crate 0 1 2 3 4 5 6 7 8 9',
)


def make_tiny_vlm(folder: str | os.PathLike[str], family: str = 'qwen2-vl') -> Path:
    """A tiny random Qwen2-VL (``family`` 'qwen2-vl') or Qwen2.5-VL ('qwen2.5-vl') in ``folder``."""
    import json

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    try:
        from transformers import Qwen2VLImageProcessorPil as ImageProcessor  # no torchvision needed
    except ImportError:
        from transformers import Qwen2VLImageProcessor as ImageProcessor
    if family == 'qwen2-vl':
        from transformers import Qwen2VLConfig as Config
        from transformers import Qwen2VLForConditionalGeneration as Model

        processor_class = 'Qwen2VLProcessor'
        vision: dict[str, Any] = dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2)
    elif family == 'qwen2.5-vl':
        from transformers import Qwen2_5_VLConfig as Config
        from transformers import Qwen2_5_VLForConditionalGeneration as Model

        processor_class = 'Qwen2_5_VLProcessor'
        vision = dict(
            depth=2,
            hidden_size=32,
            out_hidden_size=64,
            intermediate_size=64,
            num_heads=2,
            fullatt_block_indexes=[1],
            window_size=112,
        )
    else:
        raise ValueError(f'family {family!r}: expected qwen2-vl or qwen2.5-vl')
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        list(_CORPUS) * 20,
        trainers.BpeTrainer(
            vocab_size=600,
            special_tokens=list(QWEN_SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token='<|im_end|>', pad_token='<|endoftext|>')
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    # convert_tokens_to_ids is typed int | list[int]; for one token (a str) it returns an int.
    ids: dict[str, int] = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIAL_TOKENS}
    special: dict[str, Any] = dict(bos_token_id=None, eos_token_id=ids['<|im_end|>'], pad_token_id=ids['<|endoftext|>'])
    config = Config(
        text_config=dict(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=128,
            vocab_size=len(tokenizer),
            max_position_embeddings=32768,
            rope_scaling={'type': 'mrope', 'mrope_section': [2, 3, 3]},
            tie_word_embeddings=True,
            **special,
        ),
        vision_config=dict(patch_size=14, spatial_merge_size=2, temporal_patch_size=2, **vision),
        image_token_id=ids['<|image_pad|>'],
        video_token_id=ids['<|video_pad|>'],
        vision_start_token_id=ids['<|vision_start|>'],
        vision_end_token_id=ids['<|vision_end|>'],
        **special,
    )
    torch.manual_seed(0)
    model = Model(config)
    # Random weights favour whitespace; silence the whitespace-only tokens so that greedy decoding writes words
    # (random ones), as a real model would write text.
    with torch.no_grad():
        embeddings = model.get_input_embeddings().weight
        for token, index in tokenizer.get_vocab().items():
            if token not in QWEN_SPECIAL_TOKENS and not tokenizer.convert_tokens_to_string([token]).strip():
                # torch types Module attributes as Tensor | Module, so .weight is not known to be a Tensor
                embeddings[index] = 0.0
    model.generation_config.eos_token_id = special['eos_token_id']
    model.generation_config.pad_token_id = special['pad_token_id']
    model.generation_config.bos_token_id = None
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    image_processor = ImageProcessor(min_pixels=56 * 56, max_pixels=28 * 28 * 1280)
    (folder / 'processor_config.json').write_text(
        json.dumps(
            {
                'image_processor': {**image_processor.to_dict(), 'image_processor_type': 'Qwen2VLImageProcessor'},
                'processor_class': processor_class,
            },
            indent=1,
        )
    )
    image_processor.save_pretrained(folder)
    (folder / 'chat_template.jinja').write_text(QWEN_CHAT_TEMPLATE)
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir')
    args = parser.parse_args(argv)
    print(make_tiny_segmenter(Path(args.out_dir) / 'segformer'))
    print(make_tiny_sam(Path(args.out_dir) / 'sam'))
    for family in ('qwen2-vl', 'qwen2.5-vl'):
        print(make_tiny_vlm(Path(args.out_dir) / family, family))
    return 0


if __name__ == '__main__':
    sys.exit(main())
