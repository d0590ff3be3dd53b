"""siamlib earns its place: every exported name is used by a lesson or a bench script, every
"Derived in / Used in notebooks/NN" claim in a docstring is true, and the library stays small."""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
from pathlib import Path

import pytest

import siamlib as sl

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BENCHES = sorted((ROOT / "bench").glob("*.py"))


def _code(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return path.read_text()


def _used_names() -> dict[str, set[str]]:
    """``"module.name" -> {files}`` for every ``sl.module.name`` written in a lesson or bench script."""
    used: dict[str, set[str]] = {}
    for path in NOTEBOOKS + BENCHES:
        for m in re.findall(r"\bsl\.([a-z_]+\.[A-Za-z_][A-Za-z_0-9]*)", _code(path)):
            used.setdefault(m, set()).add(path.name)
    return used


def _exports() -> list[tuple[str, str, object]]:
    out = []
    for mod_name in sl.__all__:
        module = importlib.import_module(f"siamlib.{mod_name}")
        for name in getattr(module, "__all__", []):
            out.append((mod_name, name, getattr(module, name)))
    return out


def test_every_exported_name_is_used_by_a_lesson_or_a_bench():
    used = _used_names()
    unused = [f"sl.{m}.{n}" for m, n, _ in _exports() if f"{m}.{n}" not in used]
    assert unused == [], f"exported but used by no notebook or bench script: {unused}"


# Ratchets: issue 8 aims at <= 60 names and <= 2,500 lines for lessons 01-06. These bounds are where the
# library stands now; lower them as it shrinks, never raise them without saying why here. Raised twice, both in
# issue 9/14's session: sl.check grew 48 lines to reject more wrong answers (a detached or hard-coded-margin
# triplet loss), and sl.steps.omniglot_recipe (56 lines) became lesson 06's and bench/omniglot.py's ONE recipe
# (issue 14 asks for one function, not two copies); the export cut of issue 8 paid for part of it. +1: the
# strokes zip's md5 joined sl.data.omniglot's table when sl.strokes stopped repeating find_zip. Lowered from 2,586 to
# 2,484 in issue 8's "Size" pass: test-only hooks, options no lesson or bench passes, repeated checks and the two
# copies of the download-or-say-why logic went (branch trim), and verification_accuracy (lesson 04 writes it as one
# line), which meets issue 8's <= 2,500 lines and <= 60 names.
MAX_EXPORTS = 60
MAX_CORE_LINES = 2484
NEW_LESSON_MODULES = ("ordered", "selfsup", "strokes", "wasserstein")


def test_exported_names_for_lessons_01_to_06_do_not_grow():
    lessons_01_06 = [e for e in _exports() if e[0] not in NEW_LESSON_MODULES]
    assert len(lessons_01_06) <= MAX_EXPORTS, [f"{m}.{n}" for m, n, _ in lessons_01_06]


def _claims(doc: str) -> list[str]:
    """Notebook names that a docstring claims derive or use the object ("notebooks/NN_x.ipynb", "05_y.ipynb")."""
    return re.findall(r"(\d\d_[a-z0-9_]+)\.ipynb", doc or "")


def _lines_per_module() -> dict[str, int]:
    return {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in (ROOT / "siamlib").rglob("*.py")}


@pytest.mark.parametrize("mod_name,name,obj", _exports(), ids=lambda x: x if isinstance(x, str) else "")
def test_docstring_claims_are_true(mod_name, name, obj):
    """A docstring that names a lesson is only true if that lesson calls the object (or, for a
    module-level claim, something from the module)."""
    doc = inspect.getdoc(obj) if (inspect.isfunction(obj) or inspect.isclass(obj)) else None
    claims = _claims(doc)
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        return
    assert claims, f"sl.{mod_name}.{name} has no docstring line naming the lesson that derives or uses it"
    for stem in claims:
        path = ROOT / "notebooks" / f"{stem}.ipynb"
        assert path.is_file(), f"sl.{mod_name}.{name} names notebooks/{stem}.ipynb, which does not exist"
        assert re.search(rf"\bsl\.{mod_name}\.{name}\b", _code(path)), (
            f"sl.{mod_name}.{name}'s docstring says notebooks/{stem}.ipynb derives or uses it, but that lesson "
            f"never calls sl.{mod_name}.{name}")


def test_module_docstring_claims_name_existing_lessons():
    for path in (ROOT / "siamlib").rglob("*.py"):
        for stem in _claims(ast.get_docstring(ast.parse(path.read_text())) or ""):
            assert (ROOT / "notebooks" / f"{stem}.ipynb").is_file(), f"{path.name} names a missing lesson {stem}"


def test_the_contract_test_can_fail(monkeypatch):
    """Guard: a name that no lesson uses, or a false claim, is caught."""
    monkeypatch.setattr(sl.metrics, "__all__", [*sl.metrics.__all__, "nobody_calls_me"], raising=True)
    monkeypatch.setattr(sl.metrics, "nobody_calls_me", lambda: None, raising=False)
    with pytest.raises(AssertionError, match="nobody_calls_me"):
        test_every_exported_name_is_used_by_a_lesson_or_a_bench()

    def fake():
        """Derived in notebooks/01_twin_network.ipynb."""

    with pytest.raises(AssertionError, match="never calls"):
        test_docstring_claims_are_true("metrics", "fake", fake)


def test_siamlib_does_not_grow():
    """What lessons 01-06 use, in lines (new lessons' modules are counted apart)."""
    lines = _lines_per_module()
    core = sum(n for p, n in lines.items() if Path(p).stem not in NEW_LESSON_MODULES)
    assert core <= MAX_CORE_LINES, sorted(lines.items(), key=lambda kv: -kv[1])[:8]
