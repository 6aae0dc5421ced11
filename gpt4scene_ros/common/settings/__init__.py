"""Validated, typed configuration for every node, one module per node or stage.

Each setting is one dataclass field with a default and a description (the
description becomes the ROS parameter descriptor); units are in the names.
``__post_init__`` checks values and raises ValueError naming the parameter,
its value and the rule, so a bad launch configuration fails at start-up.
"""
