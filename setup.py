"""Setuptools entry for the Python part of the package (metadata in setup.cfg).

colcon builds the package through CMakeLists.txt, which also generates the
msg/srv modules; this file lets ``pip install .`` install the ROS-free core
and its command-line tools on a machine without ROS.
"""

from setuptools import setup

setup()
