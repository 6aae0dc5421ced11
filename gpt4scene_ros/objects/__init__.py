"""The object layer: segmentation, tracked instances, boxes, keyframes, markers, tags, the child process."""
