"""Tests of the quaternion helpers in gpt4scene_ros.common.transforms (quaternions as x, y, z, w)."""

import math

import numpy as np
import pytest

from gpt4scene_ros.common.transforms import matrix_from_quaternion, quaternion_from_matrix, slerp

Q_IDENTITY = (0.0, 0.0, 0.0, 1.0)
Q_Z90 = (0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4))


def rotation_about(axis, angle_deg):
    """Rodrigues' formula, independent of the code under test."""
    k = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    angle = math.radians(angle_deg)
    return np.eye(3) + math.sin(angle) * K + (1.0 - math.cos(angle)) * K @ K


def test_slerp_endpoints_and_midpoint():
    q = slerp(Q_IDENTITY, Q_Z90, 0.5)
    np.testing.assert_allclose(q, (0, 0, math.sin(math.pi / 8), math.cos(math.pi / 8)), atol=1e-12)
    np.testing.assert_allclose(slerp(Q_IDENTITY, Q_Z90, 0.0), Q_IDENTITY, atol=1e-12)
    np.testing.assert_allclose(slerp(Q_IDENTITY, Q_Z90, 1.0), Q_Z90, atol=1e-12)


def test_matrix_from_quaternion_is_a_rotation():
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        R = matrix_from_quaternion(q)
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
        axis = q[:3] / np.linalg.norm(q[:3])
        np.testing.assert_allclose(R @ axis, axis, atol=1e-12)  # the axis is fixed


@pytest.mark.parametrize(
    'axis, angle_deg',
    [
        ((1, 0, 0), 0.0),
        ((0, 0, 1), 90.0),
        ((1, 2, 3), 37.0),
        ((0, 1, -1), 179.0),
        ((1, 0, 0), 180.0),
        ((0, 1, 0), 180.0),
        ((0, 0, 1), 180.0),
        ((1, 1, 1), 180.0),
        ((-2, 1, 0.5), 180.0),
    ],
)
def test_matrix_quaternion_matrix_round_trip(axis, angle_deg):
    R = rotation_about(axis, angle_deg)
    q = quaternion_from_matrix(R)
    assert np.linalg.norm(q) == pytest.approx(1.0)
    assert q[3] >= 0.0
    np.testing.assert_allclose(matrix_from_quaternion(q), R, atol=1e-12)


def test_matrix_from_quaternion_normalises_small_deviations():
    np.testing.assert_allclose(matrix_from_quaternion((0.0, 0.0, 0.0, 1.0005)), np.eye(3), atol=1e-12)


@pytest.mark.parametrize(
    'q',
    [
        (0.0, 0.0, math.nan, 1.0),
        (0.0, 0.0, 0.0, math.inf),
        (0.0, 0.0, 0.0, 0.0),
        (0.0, 0.0, 0.0, 1.1),
        (0.5, 0.5, 0.5, 0.4),
        (0.0, 0.0, 1.0),
    ],
    ids=['nan', 'inf', 'zero', 'too-long', 'too-short', 'three-numbers'],
)
def test_matrix_from_quaternion_rejects_bad_input(q):
    with pytest.raises(ValueError, match='quaternion must be 4 finite numbers of unit norm'):
        matrix_from_quaternion(q)
