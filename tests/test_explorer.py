"""The explorer's callbacks, called directly (no browser): they change what is drawn."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import siamlib as sl


def _data(S=3, N=120, D=6, H=28, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, N)
    centres = rng.normal(size=(classes, D))
    emb = np.stack([rng.normal(size=(N, D)) + (s + 1) * centres[labels] for s in range(S)]).astype(np.float32)
    images = rng.integers(0, 256, (N, H, H), dtype=np.uint8)
    return emb, labels, images


def _offsets(ex):
    """(N, 2) positions of the drawn points, in input order (collection c holds the points of class code c)."""
    out = np.empty((len(ex.labels), 2))
    out[np.concatenate(ex._class_idx)] = np.concatenate([c.get_offsets() for c in ex._point_colls])
    return out


def _colors(ex):
    """(N, 4) face colours of the drawn points."""
    return np.concatenate([c.get_facecolors()[:1] for c in ex._point_colls])[ex._codes]


def _brute_knn(x, i, k):
    d = np.sqrt(((x - x[i]) ** 2).sum(1))
    order = [j for j in np.argsort(d, kind="stable") if j != i][:k]
    return np.array(order), d[order]


@pytest.fixture
def explorer():
    emb, labels, images = _data()
    ex = sl.viz.Explorer(emb, labels, images, k=4, snapshot=0)
    ex.widget  # build the widgets so callbacks also re-render the PNGs
    return ex


def test_epoch_slider_moves_the_points_and_the_picture(explorer):
    before = _offsets(explorer).copy()
    png_before = explorer._scatter_img.value
    computed = len(explorer.cache._cache)
    explorer._snap_slider.value = 2  # what the slider widget does on a move
    after = _offsets(explorer)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, sl.viz.project(explorer.emb[2], "pca").points, rtol=1e-4, atol=1e-5)
    assert explorer._scatter_img.value != png_before
    assert len(explorer.cache._cache) == computed + 1
    explorer._snap_slider.value = 0  # back: served from the cache, not recomputed
    np.testing.assert_allclose(_offsets(explorer), before)
    assert len(explorer.cache._cache) == computed + 1


def test_selection_shows_the_brute_force_neighbours_in_embedding_space(explorer):
    explorer._index_box.value = 17
    idx, dist = _brute_knn(explorer.emb[0], 17, 4)
    got_idx, got_dist = explorer.neighbours()
    np.testing.assert_array_equal(got_idx, idx)
    np.testing.assert_allclose(got_dist, dist, rtol=1e-5)
    pts = explorer.projection.points
    np.testing.assert_allclose(explorer._nbr_art.get_offsets(), pts[idx])
    np.testing.assert_allclose(explorer._sel_art.get_offsets(), pts[17:18])
    np.testing.assert_array_equal(explorer._strip_imgs[0].get_array(), explorer.images[17])
    for im, j in zip(explorer._strip_imgs[1:], idx):
        np.testing.assert_array_equal(im.get_array(), explorer.images[j])
    for j, d in zip(idx, dist):
        assert f"#{j} " in explorer._info.value and f"d={d:.3f}" in explorer._info.value
    # the epoch slider keeps the selection and re-searches in the new snapshot
    explorer._snap_slider.value = 2
    np.testing.assert_array_equal(explorer.neighbours()[0], _brute_knn(explorer.emb[2], 17, 4)[0])


def test_neighbours_are_searched_in_the_embedding_not_the_projection():
    # x, y spread widely; z small, so PCA keeps x, y and drops z. Point 1 sits on top of
    # point 0 in 2-D but 3 units away along z; point 2 is the true nearest (0.5 away).
    rng = np.random.default_rng(0)
    spread = np.column_stack([rng.uniform(-20, 20, (30, 2)), np.zeros(30)])
    emb = np.vstack([[0, 0, 0], [0.05, 0, 3], [0.5, 0, 0], spread]).astype(np.float32)
    ex = sl.viz.Explorer(emb, np.arange(len(emb)) % 3, np.zeros((len(emb), 8, 8), np.uint8), k=1)
    pts = ex.projection.points
    nearest_2d = np.argsort(np.linalg.norm(pts - pts[0], axis=1))[1]
    assert nearest_2d == 1
    assert ex.neighbours()[0].tolist() == [2]


def test_margin_slider_highlights_the_active_negatives(explorer):
    explorer._index_box.value = 5
    emb, labels = explorer.emb[0], explorer.labels
    d = np.linalg.norm(emb - emb[5], axis=1)
    for m in (0.5, 2.0, 6.0):
        explorer._margin_slider.value = m
        ref = [j for j in range(len(d)) if labels[j] != labels[5] and d[j] < m]  # loop reference
        assert sorted(explorer.active_negatives().tolist()) == ref
        shown = explorer._active_art.get_offsets()
        assert len(shown) == min(len(ref), explorer.max_highlight)
    explorer._active_tb.value = "triplets"
    m = explorer.margin
    pos = [j for j in range(len(d)) if labels[j] == labels[5] and j != 5]
    ref = [n for n in range(len(d)) if labels[n] != labels[5] and any(d[p] - d[n] + m > 0 for p in pos)]
    assert sorted(explorer.active_negatives().tolist()) == ref


def test_projection_dropdown_and_colour_toggle(explorer):
    explorer._method_dd.value = "tsne"
    assert explorer.projection.method == "tsne"
    np.testing.assert_allclose(_offsets(explorer), explorer.cache.get(0, "tsne").points)
    coloured = _colors(explorer).copy()
    explorer._color_cb.value = False
    assert len(np.unique(_colors(explorer), axis=0)) == 1
    assert len(np.unique(coloured, axis=0)) == 4


def test_click_selects_the_nearest_drawn_point(explorer):
    pts = explorer.projection.points
    explorer._png(explorer.fig)  # lay out the axes so data -> pixel transforms are final
    x_px, y_px = explorer.ax.transData.transform(pts[33:34])[0]
    h = explorer.fig.bbox.height
    explorer.on_click({"type": "click", "arrayX": x_px + 1, "arrayY": h - y_px})  # ipyevents: y from the top
    assert explorer.index == 33 and explorer._index_box.value == 33


def test_static_fallback_bundle_has_a_png_of_the_view(explorer):
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    import base64

    img = Image.open(io.BytesIO(base64.b64decode(bundle["image/png"])))
    w, h = img.size
    assert w >= int(explorer.fig.bbox.width) and h >= int(explorer.fig.bbox.height) + int(explorer.nfig.bbox.height)


def test_omniglot_sized_images_and_many_classes():
    emb, labels, _ = _data(S=2, N=80, classes=40)
    images = np.zeros((80, 105, 105), np.uint8)
    ex = sl.viz.Explorer(emb, labels, images, method="pca", k=3)
    assert ex._strip_imgs[0].get_array().shape == (105, 105)
    assert Image.open(io.BytesIO(ex._png(ex.nfig))).size[0] > 0


@pytest.mark.parametrize("kwargs, msg", [
    (dict(labels=np.zeros(5)), "labels has 5 entries but the embeddings have 120"),
    (dict(images=np.zeros((5, 28, 28))), "images has 5 entries"),
    (dict(k=0), "k=0"),
    (dict(method="mds"), "must come from"),
    (dict(snapshot_names=["a"]), "1 names for 3 snapshots"),
])
def test_bad_arguments_fail_early(kwargs, msg):
    emb, labels, images = _data()
    args = dict(labels=labels, images=images) | kwargs
    with pytest.raises(ValueError, match=msg):
        sl.viz.Explorer(emb, **args)


def test_calling_the_api_keeps_the_widgets_in_step(explorer):
    explorer.select(9)
    explorer.set_snapshot(1)
    assert explorer._index_box.value == 9 and explorer._snap_slider.value == 1
    assert explorer.index == 9 and explorer.snapshot == 1
    np.testing.assert_allclose(_offsets(explorer), explorer.cache.get(1, "pca").points)
    with pytest.raises(ValueError, match="out of range"):
        explorer.set_snapshot(7)


@pytest.mark.mirror
@pytest.mark.filterwarnings("ignore::siamlib.data.mnist.MnistSubsetWarning")
def test_explorer_on_real_omniglot_and_mnist_images(mirror_root):
    """Real images from the mirror (105×105 Omniglot, 28×28 MNIST): build, scrub, select, render."""
    omni = sl.data.load_omniglot("background_small1", root=mirror_root, download=False)
    mnist = sl.data.load_mnist("test", root=mirror_root, download=False)
    for data, n in ((omni, 200), (mnist, 300)):
        sub = data.subset(torch.arange(0, len(data), len(data) // n)[:n])  # spread over the classes
        rng = np.random.default_rng(0)
        emb = rng.normal(size=(2, n, 16)).astype(np.float32)  # (S, N, D) stand-in embeddings
        ex = sl.viz.Explorer(emb, sub.labels, sub.images, class_names=sub.class_names, k=3)
        ex.widget
        before = ex._scatter_img.value
        ex._snap_slider.value = 0
        assert ex._scatter_img.value != before
        ex._index_box.value = 7
        np.testing.assert_allclose(ex._strip_imgs[0].get_array(), sub.images[7].numpy() / 255.0, rtol=1e-6)
        np.testing.assert_array_equal(ex.neighbours()[0], _brute_knn(emb[0], 7, 3)[0])
