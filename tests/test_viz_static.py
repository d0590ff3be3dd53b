"""siamlib.viz static plots: the drawn data equals the input, errors are early and clear."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import siamlib as sl  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_scatter_draws_the_points_with_one_colour_per_label():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(60, 2))
    labels = np.repeat(np.arange(3), 20)
    ax = sl.viz.scatter(torch.from_numpy(pts), torch.from_numpy(labels))
    coll = ax.collections[0]
    np.testing.assert_allclose(coll.get_offsets(), pts)
    colors = coll.get_facecolors()
    for c in range(3):  # same label -> same colour; different labels -> different colours
        assert len(np.unique(colors[labels == c], axis=0)) == 1
    assert len(np.unique(colors, axis=0)) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]


def test_scatter_uses_given_axes_and_many_classes_have_no_legend():
    fig, ax = plt.subplots()
    out = sl.viz.scatter(np.zeros((50, 2)), np.arange(50), ax=ax)
    assert out is ax and ax.get_legend() is None


@pytest.mark.parametrize("bad, msg", [
    (dict(points2d=np.zeros((5, 3)), labels=None), "expected \\(N, 2\\)"),
    (dict(points2d=np.zeros((5, 2)), labels=np.zeros(4)), "5 rows but labels has 4"),
])
def test_scatter_rejects_bad_shapes(bad, msg):
    with pytest.raises(ValueError, match=msg):
        sl.viz.scatter(**bad)


def test_distance_hist_bars_match_numpy_histogram():
    rng = np.random.default_rng(1)
    d = rng.random(200)
    y = (rng.random(200) > 0.5).astype(int)
    ax = sl.viz.distance_hist(d, y, bins=10)
    edges = np.histogram_bin_edges(d, bins=10)
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights[:10], np.histogram(d[y == 0], edges, density=True)[0])
    np.testing.assert_allclose(heights[10:20], np.histogram(d[y == 1], edges, density=True)[0])


def test_distance_hist_needs_both_kinds():
    with pytest.raises(ValueError, match="only one kind"):
        sl.viz.distance_hist(np.ones(4), np.ones(4))
    with pytest.raises(ValueError, match="0 \\(similar pair\\) or 1"):
        sl.viz.distance_hist(np.ones(4), np.array([0, 1, 2, 1]))
    with pytest.raises(ValueError, match="NaN"):
        sl.viz.distance_hist(np.array([0.1, np.nan]), np.array([0, 1]))


def test_training_curves_plots_each_series():
    hist = {"train_loss": [1.0, 0.5, 0.25], "val_loss": [1.2, 0.7, 0.4], "note": "x"}
    ax = sl.viz.training_curves(hist)
    assert [ln.get_label() for ln in ax.lines] == ["train_loss", "val_loss"]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), hist["val_loss"])
    np.testing.assert_allclose(ax.lines[1].get_xdata(), [1, 2, 3])
    with pytest.raises(ValueError, match="no numeric series"):
        sl.viz.training_curves({"note": "x", "empty": []})


def test_training_curves_takes_the_projects_history():
    hist = sl.train.History(records=[{"step": s, "epoch": 0, "time_s": 0.1 * s, "loss": 1.0 / s} for s in (1, 2, 3)])
    ax = sl.viz.training_curves(hist)
    assert [ln.get_label() for ln in ax.lines] == ["loss"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, 0.5, 1 / 3])
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [1, 2, 3])
    with pytest.raises(ValueError, match="pass an sl.train.History"):
        sl.viz.training_curves([1.0, 0.5])


def test_pair_grid_captions_and_validates():
    imgs = np.zeros((3, 8, 8), np.uint8)
    ax = sl.viz.pair_grid(imgs, imgs, dissimilar=[0, 1, 0], distances=[0.1, 0.2, 0.3])
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["same d=0.10", "diff d=0.20", "same d=0.30"]
    with pytest.raises(ValueError, match="images1 has 3 rows but images2 has 2"):
        sl.viz.pair_grid(imgs, imgs[:2], dissimilar=[0, 1, 0])
    imgs = (np.arange(2 * 4 * 4) % 256).reshape(2, 4, 4).astype(np.uint8)
    mont = sl.viz.pair_grid(imgs[:1], imgs[1:], dissimilar=[1]).images[0].get_array()  # first image on top, second below
    np.testing.assert_allclose(mont[0:4, 0:4], imgs[0] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(mont[4 + 2:8 + 2, 0:4], imgs[1] / 255.0, rtol=1e-6)


def test_image_scatter_places_thumbnails_at_points():
    pts = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 1.0]])
    ax = sl.viz.image_scatter(pts, np.zeros((3, 8, 8), np.uint8), labels=[0, 1, 1])
    placed = sorted(tuple(a.xybox) for a in ax.artists)
    assert placed == sorted(map(tuple, pts))
    with pytest.raises(ValueError, match="images has shape"):
        sl.viz.image_scatter(pts, np.zeros((3, 2, 8, 8)), labels=[0, 1, 1])
