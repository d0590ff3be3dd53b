"""Build the student editions of the lessons with nbgrader.

    python tools/student_editions.py                  # all lessons -> student/
    python tools/student_editions.py --out handout 02 03
    python tools/student_editions.py --course my-course  # also keep the nbgrader course folder

The lessons in notebooks/ are the instructor editions: every exercise's solution sits between
nbgrader's solution markers, in cells that carry nbgrader metadata (solution cells, graded
self-check cells, read-only cells). This script copies them into an nbgrader course folder
(source/<lesson>/<lesson>.ipynb; a temporary one unless --course is given), runs
`nbgrader generate_assignment` on it, and writes the released notebooks to the output folder:
solutions replaced by a stub that raises NotImplementedError with a hint, outputs cleared.
It never writes to notebooks/.

Keep the course folder (--course) to collect and autograde submissions later with the same
gradebook; see README, "For teachers".
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

# What replaces each solution region. The message reaches the learner through sl.check
# ("your function raised NotImplementedError: ...") or directly when the cell runs.
STUB = ("# YOUR CODE HERE\n"
        'raise NotImplementedError("exercise not done yet: replace this raise (under # YOUR CODE HERE) '
        'with your code, run that cell, then rerun the self-check")')

NBGRADER_CONFIG = f"""\
# nbgrader configuration for a siamkit course (written by tools/student_editions.py).
c = get_config()
c.CourseDirectory.root = {{root!r}}
c.ClearSolutions.code_stub = {{{{"python": {STUB!r}}}}}
c.Execute.timeout = 600  # seconds per cell when autograding (lessons 04 and 06 train models; use SIAMLIB_QUICK=1)
"""


# Lessons whose exercises are not yet nbgrader solution/graded cells: no student edition is made for them
# (it would still hold the solutions). A new lesson is listed here until its exercises are converted.
NOT_YET_GRADED: tuple[str, ...] = ()


def lessons(selected: list[str]) -> list[Path]:
    """The graded lessons, all of them or those whose name starts with one of ``selected`` ("02", "03_triplet")."""
    found = [nb for nb in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) if nb.stem not in NOT_YET_GRADED]
    if not selected:
        return found
    picked = [nb for nb in found if any(nb.stem.startswith(s) for s in selected)]
    unknown = [s for s in selected if not any(nb.stem.startswith(s) for nb in found)]
    if unknown:
        raise SystemExit(f"no lesson matches {unknown}; lessons are {[nb.stem for nb in found]}")
    return picked


def write_course(course: Path, notebooks: list[Path]) -> None:
    """Lay out an nbgrader course: source/<lesson>/<lesson>.ipynb and nbgrader_config.py."""
    for nb in notebooks:
        (course / "source" / nb.stem).mkdir(parents=True, exist_ok=True)
        shutil.copy2(nb, course / "source" / nb.stem / nb.name)
    config = course / "nbgrader_config.py"
    if config.exists():
        print(f"keeping the existing {config}")
    else:
        config.write_text(NBGRADER_CONFIG.format(root=str(course.resolve())))


def nbgrader(course: Path, *args: str) -> None:
    """Run ``nbgrader ARGS`` in the course folder; on failure, stop with nbgrader's own log."""
    env = dict(os.environ)
    # nbgrader runs `alembic` in a subprocess: make the one installed beside this Python findable.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"`nbgrader {' '.join(args)}` failed (exit {proc.returncode}) in {course}:\n"
                         f"{proc.stdout[-4000:]}\nIs nbgrader installed (pip install -r requirements-dev.txt)?")


def build(out: Path, course: Path | None = None, selected: list[str] | None = None) -> list[Path]:
    """Generate the student editions into ``out``; return the written notebooks."""
    notebooks = lessons(selected or [])
    out = out.resolve()
    if out == NOTEBOOKS or NOTEBOOKS in out.parents:
        raise SystemExit(f"--out {out} is inside notebooks/, which holds the instructor editions: choose another folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise SystemExit(f"cannot write the student editions to {out}: {exc}. Pass --out with a writable folder.")
    tmp = None if course else tempfile.mkdtemp(prefix="siamkit-course-")
    course = Path(course or tmp).resolve()
    try:
        write_course(course, notebooks)
        if notebooks == lessons([]):  # every lesson: one nbgrader run (the glob leaves other assignments alone)
            nbgrader(course, "generate_assignment", "[0-9][0-9]_*", "--force")
        else:
            for nb in notebooks:
                nbgrader(course, "generate_assignment", nb.stem, "--force")
        written = []
        for nb in notebooks:
            released = course / "release" / nb.stem / nb.name
            text = released.read_text(encoding="utf-8")
            if "BEGIN SOLUTION" in text or "END SOLUTION" in text:
                raise SystemExit(f"{released} still holds a solution marker: check the lesson's nbgrader metadata")
            shutil.copyfile(released, out / nb.name)
            written.append(out / nb.name)
            print(f"{nb.name}: student edition written to {out / nb.name}")
        return written
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lessons", nargs="*", help='lesson prefixes, e.g. "02" "03" (default: all lessons)')
    parser.add_argument("--out", type=Path, default=ROOT / "student",
                        help="folder for the student notebooks (default: student/)")
    parser.add_argument("--course", type=Path, default=None,
                        help="keep the nbgrader course folder (source/, release/, gradebook.db) here "
                             "to autograde submissions later (default: a temporary folder)")
    args = parser.parse_args(argv)
    build(args.out, args.course, args.lessons)


if __name__ == "__main__":
    main()
