"""Lesson 06's exercise 2 self-check (a paired interval over Lake's 20 runs) rejects the usual slips by name."""
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

NB = Path(__file__).resolve().parents[1] / "notebooks" / "06_omniglot_one_shot.ipynb"


def _check_source() -> str:
    cells = json.loads(NB.read_text())["cells"]
    cell = next(c for c in cells if c["metadata"].get("nbgrader", {}).get("grade_id") == "ex2_check")
    return "".join(cell["source"])


def _namespace(half_fn, diff_fn=lambda d: d.mean(), verdict=None):
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 20, 20) * 5.0, rng.integers(0, 20, 20) * 5.0  # per-run errors, 5-point steps
    d = a - b
    diff, half = diff_fn(d), half_fn(a, b, d)
    costs = bool(diff - half > 0) if verdict is None else verdict
    return {"np": np, "stats": stats, "koch_proper_euclid": {"lake_errors": list(a)}, "proto": {"lake_errors": list(b)},
            "diff": diff, "half": half, "costs": costs}


T = stats.t.ppf(0.975, 19)
RIGHT = lambda a, b, d: T * d.std(ddof=1) / np.sqrt(20)  # noqa: E731


def test_the_solution_passes(capsys):
    exec(_check_source(), _namespace(RIGHT))
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("half_fn,named", [
    (lambda a, b, d: T * np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 20), "UNPAIRED"),
    (lambda a, b, d: 1.96 * d.std(ddof=1) / np.sqrt(20), "1.96"),
    (lambda a, b, d: T * d.std(ddof=0) / np.sqrt(20), "population standard deviation"),
    (lambda a, b, d: T * d.std(ddof=1), r"sqrt\(20\)"),
])
def test_wrong_half_widths_are_named(half_fn, named):
    with pytest.raises(AssertionError, match=named):
        exec(_check_source(), _namespace(half_fn))


def test_wrong_mean_and_wrong_verdict_are_rejected():
    with pytest.raises(AssertionError, match="mean over the 20 runs"):
        exec(_check_source(), _namespace(RIGHT, diff_fn=lambda d: -d.mean()))
    ns = _namespace(RIGHT)
    with pytest.raises(AssertionError, match="costs"):
        exec(_check_source(), {**ns, "costs": not ns["costs"]})
