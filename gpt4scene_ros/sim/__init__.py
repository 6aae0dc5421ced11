"""Synthetic rooms with ground truth and tiny random models, for tests and benchmarks."""
