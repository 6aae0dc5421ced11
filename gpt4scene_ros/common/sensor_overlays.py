"""Sensor overlays (``config/sensors/*.yaml``): the topic remappings and mapping settings of a real camera.

An overlay is a small YAML file: ``description``, ``remappings`` (our sensor topic -> the driver's topic) and
``mapping_node`` (settings of the mapping node, e.g. the depth range). ``gpt4scene-bringup --sensor NAME``
applies one; it is not a ROS parameters file because remappings cannot live in one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml

from gpt4scene_ros.common.graph import SENSOR_TOPICS
from gpt4scene_ros.common.settings.reference import NODE_SETTINGS


class SensorOverlayError(ValueError):
    """The overlay cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class SensorOverlay:
    name: str
    description: str
    remappings: dict
    """Our sensor topic (one of SENSOR_TOPICS) -> the driver's topic."""
    mapping_parameters: dict


def sensor_overlay_path(name_or_path: str, sensors_dir: Path) -> Path:
    """A file path as given, or ``sensors_dir/NAME.yaml`` for a bare name."""
    candidate = Path(name_or_path)
    if candidate.suffix in ('.yaml', '.yml') or '/' in name_or_path:
        return candidate
    return Path(sensors_dir) / f'{name_or_path}.yaml'


def available_overlays(sensors_dir: Path) -> list[str]:
    return sorted(p.stem for p in Path(sensors_dir).glob('*.yaml'))


def load_sensor_overlay(path: Path) -> SensorOverlay:
    """Read and check an overlay: known topics, known mapping-node settings with valid values."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise SensorOverlayError(f'sensor overlay {path}: {error.strerror or error}') from None
    except yaml.YAMLError as error:
        raise SensorOverlayError(f'sensor overlay {path}: not valid YAML ({error})') from None
    if not isinstance(data, dict) or not isinstance(data.get('remappings'), dict):
        raise SensorOverlayError(f'sensor overlay {path}: expected a mapping with a "remappings" mapping')
    unknown = set(data) - {'description', 'remappings', 'mapping_node'}
    if unknown:
        raise SensorOverlayError(f'sensor overlay {path}: unknown keys {sorted(unknown)}')
    remappings = data['remappings']
    for topic, target in remappings.items():
        if topic not in SENSOR_TOPICS:
            raise SensorOverlayError(f'sensor overlay {path}: remapping of {topic!r}; topics: {list(SENSOR_TOPICS)}')
        if not isinstance(target, str) or not target.strip() or ' ' in target:
            raise SensorOverlayError(f'sensor overlay {path}: {topic} -> {target!r} is not a topic name')
    parameters = data.get('mapping_node') or {}
    if not isinstance(parameters, dict):
        raise SensorOverlayError(f'sensor overlay {path}: "mapping_node" must be a mapping of settings')
    remaining = dict(parameters)
    for settings_class in NODE_SETTINGS['mapping_node']:
        names = {spec.name for spec in dataclasses.fields(settings_class)}
        chosen = {k: v for k, v in remaining.items() if k in names}
        try:
            settings_class(**chosen)
        except (TypeError, ValueError) as error:
            raise SensorOverlayError(f'sensor overlay {path}: {error}') from None
        remaining = {k: v for k, v in remaining.items() if k not in names}
    if remaining:
        raise SensorOverlayError(f'sensor overlay {path}: unknown mapping_node settings {sorted(remaining)}')
    return SensorOverlay(path.stem, str(data.get('description', '')), dict(remappings), dict(parameters))
