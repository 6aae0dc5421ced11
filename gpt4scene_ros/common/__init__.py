"""Shared by every stage: frames and camera types, transforms, motion, pose buffer, settings records."""
