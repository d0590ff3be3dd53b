"""Student editions with nbgrader (issue 9): generate -> run the stub -> autograde solution and mutant.

(a) `python tools/student_editions.py` writes a student edition of every lesson without solution code;
(b) in the student edition, each `sl.check` self-check fails on the stub with a message that says what to do;
(c) `nbgrader autograde`, in the course folder that command keeps, gives the instructor edition full marks and a
    wrong solution partial marks (lessons 02, 08 and 10 submitted with their setup and exercise cells only, to run
    in seconds).
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest


ROOT = Path(__file__).resolve().parents[1]
ALL_LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NOT_YET_GRADED: tuple[str, ...] = ()  # as tools/student_editions.py
LESSONS = [p for p in ALL_LESSONS if p.stem not in NOT_YET_GRADED]
STUB_HINT = "replace this raise (under # YOUR CODE HERE) with your code"

pytestmark = pytest.mark.slow

try:
    import nbgrader  # noqa: F401
except ImportError:  # pragma: no cover - CI installs requirements-dev.txt
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}:
        pytest.fail("nbgrader is not installed: pip install -r requirements-dev.txt", pytrace=False)
    pytest.skip("nbgrader is not installed (pip install -r requirements-dev.txt)", allow_module_level=True)


def _tool():
    spec = importlib.util.spec_from_file_location("student_editions", ROOT / "tools" / "student_editions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _grading(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _between_markers(source: str) -> list[str]:
    """The code lines of a cell's solution regions (comments and blank lines left out)."""
    lines, inside = [], False
    for line in source.splitlines():
        if "### BEGIN SOLUTION" in line:
            inside = True
        elif "### END SOLUTION" in line:
            inside = False
        elif inside and line.strip() and not line.strip().startswith("#"):
            lines.append(line.strip())
    return lines


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """The documented command, run once: student editions in a temporary folder, and the nbgrader course kept."""
    out, course = tmp_path_factory.mktemp("student"), tmp_path_factory.mktemp("course")
    proc = subprocess.run([sys.executable, "tools/student_editions.py", "--out", str(out), "--course", str(course)],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return out, course


@pytest.fixture(scope="module")
def student(built) -> Path:
    return built[0]


def test_every_lesson_has_graded_exercises():
    """Each solution cell is followed by a locked, graded self-check cell worth points; grade ids are unique."""
    for path in LESSONS:
        nb = nbformat.read(path, as_version=4)
        ids = [_grading(c)["grade_id"] for c in nb.cells if _grading(c)]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate grade ids {ids}"
        solutions = [i for i, c in enumerate(nb.cells) if _grading(c).get("solution")]
        assert len(solutions) >= 3, f"{path.name}: expected its exercises as nbgrader solution cells, found {solutions}"
        for i in solutions:
            assert _between_markers(nb.cells[i].source), f"{path.name} cell {i}: a solution cell without a solution"
            check = _grading(nb.cells[i + 1])
            assert check.get("grade") and check.get("locked") and check.get("points", 0) > 0, (
                f"{path.name} cell {i + 1}: the cell after a solution must be its locked, graded self-check")
        for i, cell in enumerate(nb.cells):
            if "BEGIN SOLUTION" in cell.source:
                assert _grading(cell).get("solution"), f"{path.name} cell {i}: solution markers outside a solution cell"


# solution lines known to be in the instructor editions: they must not survive in the student editions
KNOWN_SOLUTIONS = {
    "01_twin_network": ["grad_W2 = -2 * r.T @ x2", 'my_answers = {"concat": False'],
    "02_contrastive_loss": ["dissimilar * 0.5 * torch.clamp(margin - D, min=0) ** 2).mean()",
                            "smallest_gap = 2 * math.sin(math.radians(36) / 2)"],
    "03_triplet_loss": ["return int(((sizes - 1) * (len(labels) - sizes)).sum())",
                        "return torch.clamp(d_ap - d_an + margin, min=0).mean()"],
    "04_train_mnist": ["precision_at_i = rel.cumsum(0) / torch.arange(1, R + 1)",
                       "flattering = accuracy_at(d_test, y_test, t_test)"],
    "05_explore_embeddings": ["shared = [len(set(a.tolist()) & set(b.tolist())) for a, b in zip(nn_high, nn_low)]",
                              'dist = dist.masked_fill(labels[:, None] == labels[None, :], float("inf"))'],
    "06_omniglot_one_shot": ["prediction = torch.cdist(test_emb, train_emb).argmin(dim=1)",
                             "return 1 - a @ b.T"],
    "08_ordered_and_intransitive_pairs": ["u = torch.stack([s, torch.ones_like(s)], dim=1)",
                                          "return best / (C * (C - 1) // 2)", "return R_hat.fill_diagonal_(0)"],
    "10_wasserstein_embeddings": ["return 0.5 * min(sq(p1, q1) + sq(p2, q2), sq(p1, q2) + sq(p2, q1))",
                                  "gap = a @ pos - b @ pos", "v = b / (K.T @ u)"],
    "09_pseudo_siamese_strokes": ["u = np.linspace(0.0, s[-1], m)",
                                  "return 0.5 * (F.cross_entropy(S, target) + F.cross_entropy(S.T, target))"],
    "07_contrastive_temperature": ["return torch.softmax(logits, dim=0)[1:] / tau",
                                   "p_k.mul_(m).add_(p_q, alpha=1 - m)"],
}


def test_every_lesson_is_graded_or_named_as_not_yet():
    """A new lesson must either get nbgrader cells or be listed, so no student edition leaks its solutions."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("student_editions", ROOT / "tools" / "student_editions.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.NOT_YET_GRADED == NOT_YET_GRADED
    assert [p.stem for p in tool.lessons([])] == [p.stem for p in LESSONS]
    for path in ALL_LESSONS:
        graded = any(c.get("metadata", {}).get("nbgrader", {}).get("solution")
                     for c in nbformat.read(path, as_version=4).cells)
        assert graded != (path.stem in NOT_YET_GRADED), f"{path.name}: graded={graded}, listed as not yet graded"


def test_student_edition_holds_no_solution(student):
    assert sorted(KNOWN_SOLUTIONS) == [p.stem for p in LESSONS]
    for path in LESSONS:
        teacher = nbformat.read(path, as_version=4)
        edition = student / path.name
        assert edition.is_file(), f"no student edition of {path.name} in {student}"
        pupil = nbformat.read(edition, as_version=4)
        text = "\n".join(c.source for c in pupil.cells)
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        for line in KNOWN_SOLUTIONS[path.stem]:
            assert line in "\n".join(c.source for c in teacher.cells), f"{path.name} no longer holds {line!r}: update this test"
            assert line not in text, f"the student edition of {path.name} still holds the solution line {line!r}"
        assert len(pupil.cells) == len(teacher.cells), f"{path.name}: the student edition lost or gained cells"
        for i, (t, s) in enumerate(zip(teacher.cells, pupil.cells)):
            if _grading(t).get("solution"):
                kept = {line.strip() for line in s.source.splitlines()}
                for line in _between_markers(t.source):
                    assert line not in kept, f"{path.name} cell {i}: solution line {line!r} survived"
                assert STUB_HINT in s.source, f"{path.name} cell {i}: the stub has no hint for the learner"
            else:  # everything else reaches the learner unchanged
                assert s.source == t.source, f"{path.name} cell {i} differs in the student edition"
            assert not s.get("outputs"), f"{path.name} cell {i}: the student edition keeps stored outputs"


PRELUDE = "import itertools\nimport math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\nimport siamlib as sl\n"
SELF_CHECK = re.compile(r"\bsl\.(check\.\w+|\w+\.check_\w+)\(")  # sl.check.x( or sl.<module>.check_x(


def _run(cells: list[str], lesson) -> tuple[str, Exception | None]:
    """exec the cells in one namespace, as the kernel would; return what they printed and what they raised.

    The lesson's helpers that the cells call (cells that define ``def NAME(``, e.g. batch_hard_scratch) run first."""
    called = set(re.findall(r"\b(\w+)\(", "\n".join(cells)))
    helpers = [c.source for c in lesson.cells if c.cell_type == "code" and not _grading(c)
               and any(f"def {name}(" in c.source for name in called)]
    ns: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            for source in [PRELUDE, *helpers, *cells]:
                exec(source, ns)
        except Exception as exc:  # noqa: BLE001 - the caller decides what was expected
            return out.getvalue(), exc
    return out.getvalue(), None


@pytest.mark.parametrize("name", ["02_contrastive_loss", "03_triplet_loss", "05_explore_embeddings",
                                  "08_ordered_and_intransitive_pairs", "10_wasserstein_embeddings"])
def test_self_checks_fail_helpfully_on_the_stub(student, name):
    """Every siamlib self-check (sl.check.*, sl.<module>.check_*) passes on the instructor's solution and fails on
    the stub with the hint."""
    teacher = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    pupil = nbformat.read(student / f"{name}.ipynb", as_version=4)
    checks = [i for i, c in enumerate(pupil.cells) if _grading(c).get("grade") and SELF_CHECK.search(c.source)]
    assert checks, f"{name}: no graded siamlib self-check"
    for i in checks:
        printed, raised = _run([teacher.cells[i - 1].source, teacher.cells[i].source], teacher)
        assert raised is None and "✅" in printed, (
            f"{name} cell {i}: the self-check does not pass on the instructor's solution ({raised!r}):\n{printed}")
        printed, raised = _run([pupil.cells[i - 1].source, pupil.cells[i].source], teacher)
        assert isinstance(raised, AssertionError), f"{name} cell {i}: on the stub the self-check raised {raised!r}"
        helpful = "❌" in printed and "NotImplementedError" in printed and ("YOUR CODE HERE" in printed)
        assert helpful, (
            f"{name} cell {i}: on the stub the self-check should say what to do; it printed:\n{printed}")


def _lesson02_for_grading() -> nbformat.NotebookNode:
    """Lesson 02 as a learner could submit it, cut to what its exercises need (so autograde runs in seconds):
    setup, the scratch loss and on_circle, then every exercise cell (all the cells nbgrader knows)."""
    nb = nbformat.read(ROOT / "notebooks" / "02_contrastive_loss.ipynb", as_version=4)
    upto = next(i for i, c in enumerate(nb.cells) if "def on_circle(" in c.source)
    start = next(i for i, c in enumerate(nb.cells)
                 if c.cell_type == "markdown" and re.search(r"^## .*Exercises", c.source, re.M))
    assert not any(_grading(c) for c in nb.cells[upto + 1:start]), "an nbgrader cell would be cut"
    nb.cells = nb.cells[: upto + 1] + nb.cells[start:]
    return nb


def _setup_and_exercises(lesson: str) -> nbformat.NotebookNode:
    """A lesson as a learner could submit it, cut to its first code cell (imports and sizes), its markdown and the
    cells nbgrader knows (answers and self-checks), so autograde runs in seconds."""
    nb = nbformat.read(ROOT / "notebooks" / f"{lesson}.ipynb", as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells = [c for i, c in enumerate(nb.cells) if i == first or c.cell_type == "markdown" or _grading(c)]
    return nb


# lesson -> (the submission, the answer cell to break, the wrong line (old -> new), the check that must then fail,
#            words its feedback must show, max score)
AUTOGRADED = {
    "02_contrastive_loss": (_lesson02_for_grading, "ex1_answer", ("0.5 * ", ""), "ex1_check", ("½", "twice"), 4),
    "08_ordered_and_intransitive_pairs": (
        lambda: _setup_and_exercises("08_ordered_and_intransitive_pairs"), "ex3_answer",
        ("return R_hat.fill_diagonal_(0)", "return R_hat.T"), "ex3_check", ("transposed",), 6),
    "10_wasserstein_embeddings": (
        lambda: _setup_and_exercises("10_wasserstein_embeddings"), "ex1_answer",
        ("return 0.5 * min(", "return 0.5 * max("), "ex1_check", ("COSTLIER",), 6),
}


def test_autograde_full_marks_for_the_solution_partial_for_a_mutant(built, monkeypatch):
    _, course = built
    monkeypatch.setenv("SIAMLIB_QUICK", "1")
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    for lesson, (submission, answer_id, (old, new), broken, _, _) in AUTOGRADED.items():
        solution = submission()
        mutant = nbformat.from_dict(copy.deepcopy(solution))
        answer = next(c for c in mutant.cells if _grading(c).get("grade_id") == answer_id)
        assert old in answer.source, f"{lesson} {answer_id} no longer holds {old!r}: update this test"
        answer.source = answer.source.replace(old, new)
        for student, notebook in [("solution", solution), ("mutant", mutant)]:
            folder = course / "submitted" / student / lesson
            folder.mkdir(parents=True)
            nbformat.write(notebook, folder / f"{lesson}.ipynb")
        _tool().nbgrader(course, "autograde", lesson, "--force")

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for lesson, (_, _, _, broken, words, max_score) in AUTOGRADED.items():
            full = gb.find_submission(lesson, "solution")
            bad = gb.find_submission(lesson, "mutant")
            assert full.max_score == max_score and full.score == full.max_score, (lesson, full.score, full.max_score)
            assert 0 < bad.score < bad.max_score, (lesson, bad.score, bad.max_score)
            assert gb.find_grade(broken, lesson, lesson, "mutant").score == 0, lesson
            checks = [c for c in submission_cells(lesson) if _grading(c).get("grade")]
            others = [c for c in checks if _grading(c)["grade_id"] != broken]
            assert bad.score == sum(_grading(c)["points"] for c in others), (lesson, bad.score)
            graded = nbformat.read(course / "autograded" / "mutant" / lesson / f"{lesson}.ipynb", as_version=4)
            check = next(c for c in graded.cells if _grading(c).get("grade_id") == broken)
            shown = "".join(o.get("text", "") for o in check.outputs)
            assert "❌" in shown and any(w in shown for w in words), f"{lesson}: feedback should name the mistake: {shown!r}"


def submission_cells(lesson: str) -> list:
    return AUTOGRADED[lesson][0]().cells
