"""Every settings field becomes a declared ROS parameter with its description and rules."""

from __future__ import annotations

import dataclasses

import pytest
import rclpy
from rclpy.exceptions import ParameterException
from rclpy.parameter import Parameter

from gpt4scene_ros.common.settings.instances import InstanceConfig
from gpt4scene_ros.common.settings.mapping import MappingConfig, MappingNodeConfig
from gpt4scene_ros.common.settings.player import PlayerConfig
from gpt4scene_ros.common.settings.query import QueryConfig
from gpt4scene_ros.ros.params import declare_settings


@pytest.fixture
def bare_node():
    context = rclpy.context.Context()
    rclpy.init(context=context)
    nodes = []

    def make(overrides=()):
        node = rclpy.create_node(f'params_test_{len(nodes)}', context=context, parameter_overrides=list(overrides))
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.destroy_node()
    rclpy.shutdown(context=context)


@pytest.mark.parametrize(
    'settings_class', [PlayerConfig, QueryConfig, MappingConfig, MappingNodeConfig, InstanceConfig]
)
def test_declares_every_field_with_default_and_description(bare_node, settings_class):
    node = bare_node()
    settings = declare_settings(node, settings_class)
    assert settings == settings_class()
    for spec in dataclasses.fields(settings_class):
        value = node.get_parameter(spec.name).value
        assert (tuple(value) if isinstance(spec.default, tuple) else value) == spec.default
        descriptor = node.describe_parameter(spec.name)
        assert descriptor.description.startswith(spec.metadata['description'])
        assert descriptor.read_only == spec.metadata['read_only']


def test_overrides_reach_the_settings(bare_node):
    node = bare_node([Parameter('max_question_chars', value=99), Parameter('default_num_frames', value=4)])
    settings = declare_settings(node, QueryConfig)
    assert (settings.max_question_chars, settings.default_num_frames) == (99, 4)


def test_out_of_range_value_is_refused_naming_the_parameter(bare_node):
    node = bare_node([Parameter('max_num_frames', value=100000)])
    with pytest.raises(ParameterException, match='max_num_frames'):
        declare_settings(node, QueryConfig)


def test_array_parameter_reaches_the_settings_as_a_tuple(bare_node):
    node = bare_node([Parameter('base_to_optical_translation_m', value=[0.1, 0.0, 0.25])])
    assert declare_settings(node, MappingNodeConfig).base_to_optical_translation_m == (0.1, 0.0, 0.25)


def test_bad_choice_is_refused_naming_parameter_value_and_rule(bare_node):
    node = bare_node([Parameter('depth_encoding', value='8UC1')])
    with pytest.raises(ValueError, match=r"depth_encoding='8UC1': must be one of \['16UC1', '32FC1'\]"):
        declare_settings(node, PlayerConfig)
