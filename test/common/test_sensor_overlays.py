"""Sensor overlays (config/sensors/): every shipped camera loads with valid topics and settings; a bad
overlay is refused naming the file and the fault."""

from __future__ import annotations

import pytest

from gpt4scene_ros.common.graph import SENSOR_TOPICS
from gpt4scene_ros.common.sensor_overlays import (
    SensorOverlayError,
    available_overlays,
    load_sensor_overlay,
    sensor_overlay_path,
)
from gpt4scene_ros.common.settings.mapping import MappingConfig

SENSORS = __import__('pathlib').Path(__file__).resolve().parents[2] / 'config' / 'sensors'


def test_the_shipped_cameras():
    assert {'realsense_d435', 'realsense_d455', 'orbbec', 'zed'} <= set(available_overlays(SENSORS))
    for name in available_overlays(SENSORS):
        overlay = load_sensor_overlay(sensor_overlay_path(name, SENSORS))
        assert set(SENSOR_TOPICS[:3]) <= set(overlay.remappings), f'{name}: colour, depth and camera_info'
        assert all(target.startswith('/') for target in overlay.remappings.values()), name
        config = MappingConfig(
            depth_min_m=overlay.mapping_parameters['depth_min_m'], depth_max_m=overlay.mapping_parameters['depth_max_m']
        )
        assert 0 < config.depth_min_m < config.depth_max_m <= 6.0 and overlay.description, name
    d435 = load_sensor_overlay(sensor_overlay_path('realsense_d435', SENSORS))
    assert d435.remappings['camera/depth/image_raw'] == '/camera/camera/aligned_depth_to_color/image_raw'


@pytest.mark.parametrize(
    'text, fault',
    [
        ('remappings: {camera/rgb: /x}', "remapping of 'camera/rgb'"),
        ('remappings: {camera/color/image_raw: ""}', 'is not a topic name'),
        ('remappings: {}\nmapping_node: {depth_maximum: 3}', "unknown mapping_node settings ['depth_maximum']"),
        ('remappings: {}\nmapping_node: {depth_min_m: 2.0, depth_max_m: 1.0}', 'depth_max_m'),
        ('remappings: {}\nmapping_node: {input_qos: fast}', 'input_qos'),
        ('remappings: {}\ncolour: x', "unknown keys ['colour']"),
        ('remappings: [a, b]', 'expected a mapping'),
        ('remappings: {a: [}', 'not valid YAML'),
    ],
)
def test_a_bad_overlay_is_refused_naming_the_file_and_the_fault(tmp_path, text, fault):
    path = tmp_path / 'camera.yaml'
    path.write_text(text)
    with pytest.raises(SensorOverlayError) as refused:
        load_sensor_overlay(path)
    assert str(path) in str(refused.value) and fault in str(refused.value)


def test_a_missing_overlay_is_refused(tmp_path):
    with pytest.raises(SensorOverlayError, match='camera.yaml'):
        load_sensor_overlay(tmp_path / 'camera.yaml')
    assert sensor_overlay_path('zed', SENSORS) == SENSORS / 'zed.yaml'
    assert sensor_overlay_path('my/zed.yaml', SENSORS).name == 'zed.yaml'
