"""Questions about the scene: requests, prompts, grounding of answers, VLM backends."""
