#!/usr/bin/env python3
"""Build the tiny random test models (segmenter, Qwen2-VL, Qwen2.5-VL) into OUT_DIR: nothing is downloaded.

    python scripts/make_tiny_models.py OUT_DIR

The builders live in :mod:`gpt4scene_ros.sim.tiny_models` (the demo uses them too).
"""

import sys
from pathlib import Path

try:
    from gpt4scene_ros.sim.tiny_models import main
except ImportError:  # run from a checkout without `source scripts/env.sh`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from gpt4scene_ros.sim.tiny_models import main

if __name__ == '__main__':
    sys.exit(main())
