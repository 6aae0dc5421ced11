"""Settings dataclasses validate on construction, naming parameter, value and rule."""

from __future__ import annotations

import pytest

from gpt4scene_ros.common.settings.player import PlayerConfig
from gpt4scene_ros.common.settings.query import QueryConfig


def test_defaults_are_valid():
    PlayerConfig()
    QueryConfig()


@pytest.mark.parametrize(
    'cls, kwargs, message',
    [
        (PlayerConfig, {'rate_hz': 0.0}, 'rate_hz=0.0: must be >= 0.1'),
        (PlayerConfig, {'rate_hz': float('nan')}, 'must be finite'),
        (PlayerConfig, {'playback_mode': 'fast'}, "playback_mode='fast': must be one of"),
        (PlayerConfig, {'loop': 'yes'}, 'expected bool'),
        (PlayerConfig, {'start_index': -1}, 'start_index=-1: must be >= 0'),
        (QueryConfig, {'default_num_frames': 25, 'max_num_frames': 20}, 'must be <= max_num_frames=20'),
        (QueryConfig, {'max_question_chars': 0}, 'max_question_chars=0'),
    ],
)
def test_invalid_values_raise(cls, kwargs, message):
    with pytest.raises(ValueError, match=message.replace('[', r'\[').replace('(', r'\(')):
        cls(**kwargs)


def test_integer_given_for_a_float_setting_is_accepted_as_float():
    assert PlayerConfig(rate_hz=15).rate_hz == 15.0
    assert isinstance(PlayerConfig(rate_hz=15).rate_hz, float)
