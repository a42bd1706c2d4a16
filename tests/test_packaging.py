"""The README's commands, CI and the pins stay consistent."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def readme_commands():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [b.strip() for b in blocks[:2]]


def test_readme_starts_with_the_two_commands():
    main, tests = readme_commands()
    assert main == "pip install -c constraints.txt -e . && snakemake --cores 8"
    assert "python -m pytest" in tests and "constraints.txt" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    _, tests = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci


def pins(lines):
    out = {}
    for line in lines:
        line = line.strip()
        if line and not line.startswith(("#", "-")) and "==" in line:
            name, version = line.split("==", 1)
            out[name.lower().replace("_", "-")] = version
    return out


def test_environment_yml_pins_equal_constraints():
    constraints = pins((ROOT / "constraints.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pins(pip_section) == constraints
    assert constraints["torch"] == "2.13.0"  # the CPU build; anything looser pulls CUDA wheels


def test_every_config_file_is_valid():
    from jsonschema import Draft202012Validator

    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    for path in (ROOT / "config").glob("*.yaml"):
        errors = list(Draft202012Validator(schema).iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, (path.name, [e.message for e in errors])
