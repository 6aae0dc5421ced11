"""Write docs/parameters.md from the settings specs (gpt4scene_ros.common.settings.reference.parameter_reference)."""

from pathlib import Path

from gpt4scene_ros.common.settings.reference import parameter_reference

if __name__ == '__main__':
    path = Path(__file__).resolve().parents[1] / 'docs' / 'parameters.md'
    path.parent.mkdir(exist_ok=True)
    path.write_text(parameter_reference())
    print(f'wrote {path}')
