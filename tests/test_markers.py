"""Every test that reads the data mirror carries ``@pytest.mark.mirror``.

``-m "not mirror"`` must leave out everything that needs data, and the
conftest's no-data stop relies on the marker, so a missing marker is a test
that fails without data instead of being named in the one message. The test
files are parsed with ``ast``: a test reads the mirror when it (or a fixture it
uses, transitively, from its module or tests/conftest.py) asks for the
``mirror_root`` fixture, or calls a loader (``load_mnist``, ``load_omniglot``,
``load_lake_runs``) without a ``root`` (that reads ``SIAMLIB_DATA``) or with a
root taken from ``mirror_root`` / ``config.data_root()``; tests that run a lesson
notebook (``NOTEBOOK_RUNNERS``) read it too. The marker counts on the function,
on its class (decorator or ``pytestmark``) or on the module (``pytestmark``).
Notebooks themselves are marked by tests/conftest.py.
"""
from __future__ import annotations

import ast
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parent
MIRROR_FIXTURES = {"mirror_root"}
LOADERS = {"load_mnist": 1, "load_omniglot": 1, "load_lake_runs": 0}  # name -> position of `root`
ROOT_NAMES = {"mirror_root", "data_root"}  # a root built from these is the mirror
NOTEBOOK_RUNNERS = {"test_browser.py"}  # every test in these runs a lesson, and lessons load data


def _name(node: ast.AST) -> str:
    """`a.b.c` -> "c", `f` -> "f"; else ""."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _is_mirror_mark(node: ast.AST) -> bool:
    """True if ``node`` holds ``pytest.mark.mirror`` (alone, called, or in a list)."""
    return any(isinstance(n, ast.Attribute) and n.attr == "mirror" and _name(n.value) == "mark"
               for n in ast.walk(node))


def _marked(decorators: list[ast.expr]) -> bool:
    return any(_is_mirror_mark(d) for d in decorators)


def _pytestmark(body: list[ast.stmt]) -> bool:
    """A ``pytestmark = ...`` in this body (module or class) that holds the mirror mark."""
    return any(isinstance(s, (ast.Assign, ast.AnnAssign))
               and any(_name(t) == "pytestmark" for t in (s.targets if isinstance(s, ast.Assign) else [s.target]))
               and s.value is not None and _is_mirror_mark(s.value) for s in body)


def _mentions(node: ast.AST, names: set[str]) -> bool:
    return any((isinstance(n, ast.Name) and n.id in names) or (isinstance(n, ast.Attribute) and n.attr in names)
               for n in ast.walk(node))


def _direct_reasons(func: ast.FunctionDef) -> list[str]:
    """Why ``func``'s own body reads the mirror (without looking at its fixtures)."""
    body = ast.Module(body=func.body, type_ignores=[])
    sets_data_env = any(isinstance(n, ast.Call) and _name(n) == "setenv" and n.args
                        and isinstance(n.args[0], ast.Constant) and n.args[0].value == "SIAMLIB_DATA"
                        for n in ast.walk(body))
    reasons = []
    for n in ast.walk(body):
        if not isinstance(n, ast.Call):
            continue
        name = _name(n)
        if name in LOADERS:
            root = next((k.value for k in n.keywords if k.arg == "root"), None)
            if root is None and len(n.args) > LOADERS[name]:
                root = n.args[LOADERS[name]]
            if root is None or (isinstance(root, ast.Constant) and root.value is None):
                if not sets_data_env:
                    reasons.append(f"calls {name}() without root= (reads SIAMLIB_DATA), line {n.lineno}")
            elif _mentions(root, ROOT_NAMES):
                reasons.append(f"calls {name}() on the mirror's root, line {n.lineno}")
        elif name == "getfixturevalue" and n.args and isinstance(n.args[0], ast.Constant) \
                and n.args[0].value in MIRROR_FIXTURES:
            reasons.append(f"asks for the {n.args[0].value} fixture, line {n.lineno}")
    return reasons


def _params(func: ast.FunctionDef) -> list[str]:
    names = [a.arg for a in func.args.posonlyargs + func.args.args + func.args.kwonlyargs if a.arg != "self"]
    for d in func.decorator_list:  # @pytest.mark.usefixtures("a", "b")
        if isinstance(d, ast.Call) and _name(d) == "usefixtures":
            names += [a.value for a in d.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return names


def _fixtures(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    """Fixtures defined at module level (or in classes), by the name tests use."""
    out = {}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for d in node.decorator_list:
            if _name(d) == "fixture":
                alias = next((k.value.value for k in getattr(d, "keywords", [])
                              if k.arg == "name" and isinstance(k.value, ast.Constant)), None)
                out[alias or node.name] = node
    return out


def _mirror_fixtures(fixtures: dict[str, ast.FunctionDef]) -> dict[str, str]:
    """Fixture name -> why it reads the mirror, closed over fixtures that use such fixtures."""
    reading = {name: "is the mirror" for name in MIRROR_FIXTURES}
    changed = True
    while changed:
        changed = False
        for name, func in fixtures.items():
            if name in reading:
                continue
            why = _direct_reasons(func) or [f"uses fixture {p}" for p in _params(func) if p in reading]
            if why:
                reading[name] = why[0]
                changed = True
    return reading


def _tests(tree: ast.Module):
    """(test function, its class or None) for module-level tests and tests in Test* classes."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            yield node, None
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and sub.name.startswith("test"):
                    yield sub, node


def unmarked_mirror_tests(source: str, filename: str = "test_x.py", conftest: str = "") -> list[str]:
    """Tests in ``source`` that read the mirror but lack the marker: "file::test: why"."""
    tree = ast.parse(source)
    fixtures = {**_fixtures(ast.parse(conftest)), **_fixtures(tree)}  # the module's own win
    reading = _mirror_fixtures(fixtures)
    module_marked = _pytestmark(tree.body)
    problems = []
    for func, cls in _tests(tree):
        why = ([f"runs a lesson notebook ({filename} is in NOTEBOOK_RUNNERS)"] if filename in NOTEBOOK_RUNNERS else [])
        why += _direct_reasons(func) + [f"uses fixture {p} ({reading[p]})" for p in _params(func) if p in reading]
        marked = module_marked or _marked(func.decorator_list) or (
            cls is not None and (_marked(cls.decorator_list) or _pytestmark(cls.body)))
        if why and not marked:
            where = f"{cls.name}::{func.name}" if cls else func.name
            problems.append(f"{filename}::{where} (line {func.lineno}): {why[0]}")
    return problems


def test_every_test_that_reads_the_mirror_is_marked():
    conftest = (TESTS / "conftest.py").read_text()
    files = sorted(TESTS.glob("test_*.py"))
    assert len(files) > 5, f"expected the test files under {TESTS}"
    problems = [p for f in files for p in unmarked_mirror_tests(f.read_text(), f.name, conftest)]
    assert not problems, ("these tests read the data mirror but lack @pytest.mark.mirror "
                          "(so -m 'not mirror' would run them without data):\n  " + "\n  ".join(problems))


def test_the_suite_has_mirror_tests_to_check():
    """The check above is only worth something if the parser finds the mirror tests that exist."""
    conftest = (TESTS / "conftest.py").read_text()
    found = []
    for f in sorted(TESTS.glob("test_*.py")):
        source = f.read_text()
        stripped = source.replace("@pytest.mark.mirror\n", "").replace("pytest.mark.mirror,", "")
        found += unmarked_mirror_tests(stripped, f.name, conftest)
    files = {p.split("::")[0] for p in found}
    assert {"test_data_mnist.py", "test_data_omniglot.py", "test_download.py", "test_browser.py"} <= files, found


# ----------------------------------------------------------------------------- the checker can fail
_CONFTEST = textwrap.dedent('''
    import pytest

    @pytest.fixture(scope="session")
    def mirror_root():
        return 1
''')


def _check(body: str) -> list[str]:
    return unmarked_mirror_tests("import pytest\nimport siamlib as sl\n" + textwrap.dedent(body), "test_x.py", _CONFTEST)


def test_checker_flags_an_unmarked_fixture_user_and_an_unmarked_default_root_loader():
    assert _check("def test_a(mirror_root): pass") == [
        "test_x.py::test_a (line 3): uses fixture mirror_root (is the mirror)"]
    assert len(_check("def test_b():\n    sl.data.load_mnist('test')")) == 1
    assert len(_check("def test_c():\n    sl.data.load_lake_runs(size=28)")) == 1
    assert len(_check("def test_d(request):\n    request.getfixturevalue('mirror_root')")) == 1
    assert len(_check("from siamlib.config import data_root\n"
                      "def test_e():\n    sl.data.load_omniglot('x', root=data_root())")) == 1


def test_checker_follows_fixtures_and_classes():
    local = '''
        @pytest.fixture
        def served(mirror_root, tmp_path):
            return tmp_path

        @pytest.fixture
        def server(served):
            return served

        def test_a(server): pass

        class TestB:
            def test_b(self, served): pass
    '''
    assert [p.split(" ")[0] for p in _check(local)] == ["test_x.py::test_a", "test_x.py::TestB::test_b"]


def test_checker_accepts_marks_and_explicit_roots():
    assert _check("@pytest.mark.mirror\ndef test_a(mirror_root): pass") == []
    assert _check("pytestmark = [pytest.mark.slow, pytest.mark.mirror]\ndef test_a(mirror_root): pass") == []
    assert _check("@pytest.mark.mirror\nclass TestA:\n    def test_a(self, mirror_root): pass") == []
    assert _check("class TestA:\n    pytestmark = pytest.mark.mirror\n    def test_a(self, mirror_root): pass") == []
    assert _check("def test_a(tmp_path):\n    sl.data.load_mnist('test', root=tmp_path, download=False)") == []
    assert _check("def test_a(tmp_path):\n    sl.data.load_lake_runs(tmp_path)") == []
    assert _check("def test_a(monkeypatch, tmp_path):\n    monkeypatch.setenv('SIAMLIB_DATA', str(tmp_path))\n"
                  "    sl.data.load_mnist('test')") == []
    # a mark that is not `mirror` does not count
    assert len(_check("@pytest.mark.slow\ndef test_a(mirror_root): pass")) == 1
