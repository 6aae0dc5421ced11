"""gpt4scene-export: ShareGPT samples with the robot's marked BEV and frames, that provably feed a model (one
optimisation step of the tiny random Qwen2-VL through transformers on four of them)."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest

from gpt4scene_ros.eval.benchmarks import read_questions
from gpt4scene_ros.tools.export import main
from gpt4scene_ros.tools.make_scene import main as make_scene


@pytest.fixture(scope='module')
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp('export-bench')
    args = ['--frames', '40', '--width', '320', '--height', '240', '--seed', '9', '--questions', str(root)]
    assert make_scene([str(root / 'sequence'), *args]) == 0
    return root


def _export(bench, out, benchmark, *extra):
    args = ['--scans', str(bench / 'scans'), '--annotations', str(bench / f'{benchmark}.json')]
    extra = ['--frames', '3', '--size', '256', '--stride', '2', *extra]
    return main([*args, '--benchmark', benchmark, '--out', str(out), *extra])


def test_grounding_samples_name_the_map_objects_and_the_images_carry_markers_as_asked(bench, tmp_path, capsys):
    out = tmp_path / 'refer'
    assert _export(bench, out, 'scanrefer') == 0
    summary = json.loads(capsys.readouterr().out)
    samples = json.loads((out / 'gpt4scene_scanrefer.json').read_text())
    questions = read_questions('scanrefer', bench / 'scanrefer.json')
    assert summary['samples'] == len(samples) and summary['samples'] + summary['dropped_no_match'] == len(questions)
    assert len(samples) >= 0.8 * len(questions)
    instances = {
        i['id'] for i in json.loads((out / 'maps' / questions[0].scene_id / 'instances.json').read_text())['instances']
    }
    for sample in samples:
        user, assistant = sample['messages']
        assert (user['role'], assistant['role']) == ('user', 'assistant')
        assert user['content'].count('<image>') == len(sample['images']) == 4  # the BEV and 3 frames
        assert re.fullmatch(r'<OBJ\d{3}>', assistant['content'])
        assert int(assistant['content'][4:7]) in instances
    info = json.loads((out / 'dataset_info.json').read_text())['gpt4scene_scanrefer']
    assert info['file_name'] == 'gpt4scene_scanrefer.json' and info['formatting'] == 'sharegpt'
    assert info['columns'] == {'messages': 'messages', 'images': 'images'}
    marked = [cv2.imread(str(out / name)) for name in samples[0]['images']]
    assert max(marked[0].shape[:2]) == 256 and all(max(image.shape[:2]) <= 256 for image in marked)


def test_the_marker_variants_mark_the_bev_the_frames_both_or_neither(bench, tmp_path):
    from gpt4scene_ros.common.settings.mapping import MappingConfig
    from gpt4scene_ros.eval.export import scene_images
    from gpt4scene_ros.eval.run import RunSettings, map_scene

    scene = next((bench / 'scans').iterdir())
    settings = RunSettings('scanrefer', bench / 'scanrefer.json', bench / 'scans', tmp_path, max_frames=16)
    snapshot, _ = map_scene(scene, tmp_path / 'map', settings)
    images = {m: scene_images(snapshot, 3, m, 256) for m in ('both', 'frames', 'bev', 'none')}
    assert [len(v) for v in images.values()] == [4] * 4 and MappingConfig() == settings.mapping

    def same(a, b):
        return [np.array_equal(x, y) for x, y in zip(images[a], images[b])]

    assert same('both', 'none') == [False] * 4, 'markers drawn on every image'
    assert same('bev', 'both') == [True, False, False, False] and same('bev', 'none') == [False, True, True, True]
    assert same('frames', 'both') == [False, True, True, True] and same('frames', 'none') == [True, False, False, False]


def test_exported_samples_feed_one_optimisation_step_of_the_tiny_qwen2_vl(bench, tiny_models, tmp_path):
    import torch
    import transformers
    from PIL import Image

    from gpt4scene_ros.query.backends.local_transformers import load_processor

    out = tmp_path / 'qa'
    assert _export(bench, out, 'scanqa') == 0
    samples = json.loads((out / 'gpt4scene_scanqa.json').read_text())[:4]
    assert len(samples) == 4
    folder = tiny_models / 'qwen2-vl'
    processor = load_processor(str(folder))  # the images-only processor the backend uses (no torchvision here)
    model = transformers.Qwen2VLForConditionalGeneration.from_pretrained(folder)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    model.train()
    for sample in samples:
        user, assistant = sample['messages']
        text = user['content'].replace('<image>', '')
        messages = [
            {'role': 'user', 'content': [{'type': 'image'}] * len(sample['images']) + [{'type': 'text', 'text': text}]},
            {'role': 'assistant', 'content': [{'type': 'text', 'text': assistant['content']}]},
        ]
        chat = processor.apply_chat_template(messages, tokenize=False)
        images = [Image.open(out / name).convert('RGB') for name in sample['images']]
        inputs = processor(text=[chat], images=images, return_tensors='pt')
        assert inputs['image_grid_thw'].shape[0] == len(images), 'every image reaches the model'
        image_tokens = int((inputs['input_ids'] == model.config.image_token_id).sum())
        merge = processor.image_processor.merge_size**2
        assert image_tokens == int(inputs['image_grid_thw'].prod(dim=1).sum()) // merge > 0
        loss = model(**inputs, labels=inputs['input_ids']).loss
        assert torch.isfinite(loss)
        loss.backward()
    optimizer.step()
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters())), 'a step was taken'
