"""The TSDF map: integration, read-back, map files, ray casting, the bird's-eye view, meshes, gravity."""
