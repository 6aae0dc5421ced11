"""Mesh size control for display (RViz markers cost about 3 us per vertex to build)."""

from __future__ import annotations

import numpy as np
import open3d as o3d


def decimate_mesh(
    vertices: np.ndarray, colors: np.ndarray, triangles: np.ndarray, max_triangles: int, start_cell_m: float
) -> tuple:
    """Return the mesh, or a vertex-clustered version of it with at most ``max_triangles`` triangles.

    Vertex clustering merges the vertices in each ``cell`` cube (averaging
    positions and colours); the cell starts at ``start_cell_m`` and grows by
    half until the mesh is small enough. Colours are uint8 RGB.
    """
    if len(triangles) <= max_triangles:
        return vertices, colors, triangles
    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(np.asarray(vertices, dtype=np.float64)),
        o3d.utility.Vector3iVector(np.asarray(triangles, dtype=np.int32)),
    )
    mesh.vertex_colors = o3d.utility.Vector3dVector(np.asarray(colors, dtype=np.float64) / 255.0)
    cell = start_cell_m
    while True:
        simplified = mesh.simplify_vertex_clustering(cell, o3d.geometry.SimplificationContraction.Average)
        if len(simplified.triangles) <= max_triangles:
            break
        cell *= 1.5
    return (
        np.asarray(simplified.vertices, dtype=np.float32),
        np.clip(np.asarray(simplified.vertex_colors) * 255.0 + 0.5, 0, 255).astype(np.uint8),
        np.asarray(simplified.triangles, dtype=np.int32),
    )
