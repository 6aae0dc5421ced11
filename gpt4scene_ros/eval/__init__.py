"""Benchmarks: annotation readers, answer and grounding metrics, the evaluation run and training-data export."""
