"""The install files agree with each other and with the package metadata."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _requirement_names(lines):
    names = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", line)
        names[match.group(1).lower().replace("_", "-")] = match.group(2).strip()
    return names


def test_requirements_use_lower_bounds_only():
    reqs = _requirement_names((ROOT / "requirements.txt").read_text().splitlines())
    assert reqs, "requirements.txt lists no package"
    for name, spec in reqs.items():
        assert spec.startswith(">="), f"{name}: use a lower bound (>=), not {spec!r}"
        assert "==" not in spec and "<" not in spec.replace("<=", "<"), f"{name}: no exact pins or caps ({spec!r})"


def test_requirements_install_siamlib_itself():
    lines = [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    assert "-e ." in lines, "requirements.txt must install siamlib (`-e .`)"


def test_environment_yml_installs_the_same_set():
    text = (ROOT / "environment.yml").read_text()
    # environment.yml delegates to requirements.txt, so the sets cannot drift ...
    assert re.search(r"^\s*-\s*-r requirements\.txt\s*$", text, re.M), "environment.yml must pip-install -r requirements.txt"
    # ... and it pins no package of its own beside python and pip.
    deps_block = text.split("dependencies:", 1)[1]
    conda_deps = re.findall(r"^  - ([A-Za-z0-9_.\-]+)", deps_block, re.M)
    assert set(conda_deps) <= {"python", "pip"}, f"environment.yml lists extra packages {conda_deps}; add them to requirements.txt"
    py = re.search(r"python>=([0-9.]+)", text).group(1)
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["requires-python"] == f">={py}", "environment.yml and pyproject.toml disagree on the Python version"


def test_package_dependencies_are_in_requirements():
    reqs = _requirement_names((ROOT / "requirements.txt").read_text().splitlines())
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = _requirement_names(meta["dependencies"])
    missing = sorted(set(deps) - set(reqs))
    assert not missing, f"pyproject dependencies missing from requirements.txt: {missing}"
    for name, spec in deps.items():
        assert reqs[name] == spec, f"{name}: pyproject says {spec!r}, requirements.txt says {reqs[name]!r}"


@pytest.mark.parametrize("name", ["torch", "torchvision", "jupyterlab", "matplotlib", "ipywidgets", "umap-learn", "nbval"])
def test_core_packages_are_required(name):
    reqs = _requirement_names((ROOT / "requirements.txt").read_text().splitlines())
    assert name in reqs, f"core package {name} missing from requirements.txt"


def test_config_quick_switch_parses(monkeypatch):
    from siamlib import config

    monkeypatch.setenv("SIAMLIB_QUICK", "1")
    assert config.is_quick() and config.pick(full=10, quick=2) == 2
    monkeypatch.setenv("SIAMLIB_QUICK", "0")
    assert not config.is_quick() and config.pick(full=10, quick=2) == 10
    monkeypatch.setenv("SIAMLIB_QUICK", "maybe")
    with pytest.raises(ValueError, match="SIAMLIB_QUICK"):
        config.is_quick()


def test_data_root_prefers_env_and_defaults_to_checkout(monkeypatch, tmp_path):
    from siamlib import config

    monkeypatch.setenv("SIAMLIB_DATA", str(tmp_path))
    assert config.data_root() == tmp_path.resolve()
    monkeypatch.delenv("SIAMLIB_DATA")
    assert config.data_root() == ROOT / "data"


def test_test_tools_stay_out_of_the_learners_install():
    learner = _requirement_names((ROOT / "requirements.txt").read_text().splitlines())
    dev_lines = (ROOT / "requirements-dev.txt").read_text().splitlines()
    dev = _requirement_names(dev_lines)
    for tool in ("pytest-timeout", "hypothesis", "playwright", "nbgrader"):
        assert tool not in learner and tool in dev, tool
    assert "-r requirements.txt" in [line.strip() for line in dev_lines]
    for name, spec in dev.items():
        assert spec.startswith(">=") and "==" not in spec, f"{name}: lower bounds only ({spec!r})"
