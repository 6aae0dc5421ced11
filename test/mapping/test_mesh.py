"""Mesh decimation for display keeps the shape and colours within the triangle budget."""

from __future__ import annotations

import numpy as np

from gpt4scene_ros.mapping.mesh import decimate_mesh


def grid_mesh(n: int):
    """An n x n grid of squares on the plane z = 0.5 over [0, 1]^2, coloured by x."""
    xs, ys = np.meshgrid(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1))
    vertices = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, 0.5)], axis=1).astype(np.float32)
    colors = np.stack([xs.ravel() * 255, np.zeros(xs.size), np.full(xs.size, 100)], axis=1).astype(np.uint8)
    index = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    a, b, c, d = index[:-1, :-1].ravel(), index[:-1, 1:].ravel(), index[1:, :-1].ravel(), index[1:, 1:].ravel()
    triangles = np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)]).astype(np.int32)
    return vertices, colors, triangles


def test_small_mesh_is_returned_unchanged():
    mesh = grid_mesh(4)
    out = decimate_mesh(*mesh, max_triangles=1000, start_cell_m=0.01)
    assert all(x is y for x, y in zip(out, mesh))


def test_large_mesh_is_reduced_below_the_budget_keeping_shape_and_colour():
    vertices, colors, triangles = grid_mesh(200)  # 80,000 triangles
    out_vertices, out_colors, out_triangles = decimate_mesh(
        vertices, colors, triangles, max_triangles=5000, start_cell_m=0.005
    )
    assert 100 < len(out_triangles) <= 5000
    np.testing.assert_allclose(out_vertices[:, 2], 0.5, atol=1e-6)
    assert out_vertices[:, :2].min() < 0.05 and out_vertices[:, :2].max() > 0.95
    # Colour still follows x (red = 255 x), blue stays 100.
    np.testing.assert_allclose(out_colors[:, 0], out_vertices[:, 0] * 255, atol=12)
    assert np.all(out_colors[:, 2] == 100)
