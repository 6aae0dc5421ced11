"""Command-line entries: gpt4scene-process, gpt4scene-make-scene, the demo and its report, ask, bring-up."""
