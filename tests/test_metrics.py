"""sl.metrics against trusted references: brute-force loops, scikit-learn, pytorch-metric-learning."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import siamlib as sl


def random_set(n=150, d=4, classes=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    emb = torch.randn(n, d, generator=g) + 1.5 * torch.nn.functional.one_hot(labels % d, d)  # some structure
    return emb, labels


def brute_force_retrieval(emb, labels):
    """Musgrave et al. 2020, written as plainly as possible: one query at a time."""
    p1, rp, mapr = [], [], []
    for q in range(len(emb)):
        others = [i for i in range(len(emb)) if i != q]
        r = sum(1 for i in others if labels[i] == labels[q])
        if r == 0:
            continue
        ranked = sorted(others, key=lambda i: float(torch.dist(emb[q], emb[i])))
        rel = [1.0 if labels[i] == labels[q] else 0.0 for i in ranked[:r]]
        p1.append(rel[0])
        rp.append(sum(rel) / r)
        mapr.append(sum(rel[i] * sum(rel[: i + 1]) / (i + 1) for i in range(r)) / r)
    return np.mean(p1), np.mean(rp), np.mean(mapr)


@pytest.mark.parametrize("seed", [0, 1])
def test_retrieval_against_brute_force(seed):
    emb, labels = random_set(seed=seed)
    got = sl.metrics.retrieval_metrics(emb, labels)
    p1, rp, mapr = brute_force_retrieval(emb, labels)
    assert got["precision_at_1"] == pytest.approx(p1)
    assert got["r_precision"] == pytest.approx(rp)
    assert got["map_at_r"] == pytest.approx(mapr)
    assert sl.metrics.precision_at_1(emb, labels) == pytest.approx(p1)


def test_retrieval_against_pytorch_metric_learning():
    accuracy_calculator = pytest.importorskip("pytorch_metric_learning.utils.accuracy_calculator")
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.utils.inference import CustomKNN

    emb, labels = random_set(n=300, d=8, classes=9, seed=3)
    calc = accuracy_calculator.AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
        knn_func=CustomKNN(LpDistance(normalize_embeddings=False)), device=torch.device("cpu"))
    ref = calc.get_accuracy(emb, labels, emb, labels, ref_includes_query=True)
    got = sl.metrics.retrieval_metrics(emb, labels)
    assert got["precision_at_1"] == pytest.approx(ref["precision_at_1"])
    assert got["r_precision"] == pytest.approx(ref["r_precision"])
    assert got["map_at_r"] == pytest.approx(ref["mean_average_precision_at_r"])


def test_map_at_r_hand_value():
    emb = torch.tensor([[0.0], [1.0], [2.5], [10.0]])
    labels = torch.tensor([0, 0, 1, 0])
    # q0 (R=2): [1 ✓, 2 ✗] → (1/1)/2 = 0.5;  q1: [0 ✓ (1.0), 2 ✗ (1.5)] → 0.5
    # q3: [2 ✗ (7.5), 1 ✓ (9.0)] → (0 + 1/2)/2 = 0.25;  q2 has R = 0 and is skipped
    assert sl.metrics.retrieval_metrics(emb, labels)["map_at_r"] == pytest.approx(np.mean([0.5, 0.5, 0.25]))
    assert sl.metrics.retrieval_metrics(emb, labels)["precision_at_1"] == pytest.approx(2 / 3)
    assert sl.metrics.precision_at_1(emb, labels) == pytest.approx(2 / 3)


def test_roc_auc_against_a_loop_over_pairs_with_ties():
    """AUC = P(a dissimilar pair is farther than a similar one), ties counting one half."""
    g = torch.Generator().manual_seed(0)
    dist = torch.randint(0, 8, (200,), generator=g).float()  # many ties
    y = (torch.rand(200, generator=g) < 0.4).long()
    far, near = dist[y == 1].tolist(), dist[y == 0].tolist()
    wins = sum(1.0 if f > n else 0.5 if f == n else 0.0 for f in far for n in near)
    assert sl.metrics.roc_auc(dist, y) == pytest.approx(wins / (len(far) * len(near)))


def test_roc_auc_perfect_and_reversed():
    d = torch.tensor([0.1, 0.2, 0.9, 1.0])
    assert sl.metrics.roc_auc(d, torch.tensor([0, 0, 1, 1])) == 1.0
    assert sl.metrics.roc_auc(d, torch.tensor([1, 1, 0, 0])) == 0.0
    with pytest.raises(ValueError, match="both"):
        sl.metrics.roc_auc(d, torch.zeros(4))


def test_best_threshold_against_brute_force():
    g = torch.Generator().manual_seed(2)
    y = (torch.rand(300, generator=g) < 0.5).long()
    dist = torch.rand(300, generator=g) + 0.4 * y
    t = sl.metrics.best_threshold(dist, y)
    candidates = torch.cat([dist, dist - 1e-4, dist + 1e-4])
    accuracy = lambda c: ((dist > c) == y.bool()).double().mean().item()  # noqa: E731 - "dissimilar iff D > c"
    assert accuracy(t) == pytest.approx(max(accuracy(float(c)) for c in candidates))


def test_bad_labels_raise():
    with pytest.raises(ValueError, match="dissimilar"):
        sl.metrics.roc_auc(torch.rand(3), torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match="labels"):
        sl.metrics.precision_at_1(torch.rand(3, 2), torch.tensor([0, 1]))


# ----------------------------------------------------------------- episodes
def test_episode_accuracy_perfect_and_chance():
    labels = torch.arange(40).repeat_interleave(5)  # 40 classes × 5
    onehot = torch.nn.functional.one_hot(labels, 40).float()
    acc, half = sl.metrics.episode_accuracy(onehot, labels, n_way=20, k_shot=1, n_query=2, n_episodes=50)
    assert acc == 1.0 and half == 0.0
    noise = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    acc, half = sl.metrics.episode_accuracy(noise, labels, n_way=5, k_shot=1, n_query=1, n_episodes=2000)
    assert abs(acc - 0.2) < 3 * half and 0 < half < 0.05  # chance = 1/5, within the interval


def test_episode_accuracy_within_group():
    # 4 groups × 5 classes; the embedding tells classes apart only WITHIN a group
    labels = torch.arange(20).repeat_interleave(3)
    groups = labels // 5
    emb = torch.nn.functional.one_hot(labels % 5, 5).float()
    within, _ = sl.metrics.episode_accuracy(emb, labels, n_way=5, n_episodes=200, groups=groups)
    mixed, _ = sl.metrics.episode_accuracy(emb, labels, n_way=5, n_episodes=200)
    assert within == 1.0 and mixed < 0.9
    with pytest.raises(ValueError, match="n_way"):
        sl.metrics.episode_accuracy(emb, labels, n_way=6, groups=groups)


def test_episode_accuracy_against_loop():
    """The prototype rule, recomputed by hand for one episode (n_episodes=1, same seed → same draw)."""
    emb, labels = random_set(n=120, d=3, classes=6, seed=5)
    acc, _ = sl.metrics.episode_accuracy(emb, labels, n_way=4, k_shot=2, n_query=3, n_episodes=1, seed=11)
    rng = np.random.default_rng(11)
    by_class = {int(c): np.flatnonzero(labels.numpy() == c) for c in np.unique(labels.numpy())}
    pool = [c for c, idx in by_class.items() if len(idx) >= 5]
    rng.integers(1)  # the pool choice
    classes = rng.choice(pool, size=4, replace=False)
    correct = total = 0
    draws = [rng.choice(by_class[int(c)], size=5, replace=False) for c in classes]
    protos = [emb[d[:2]].mean(0) for d in draws]
    for true, d in enumerate(draws):
        for q in d[2:]:
            pred = min(range(4), key=lambda j: float(torch.dist(emb[q], protos[j])))
            correct += pred == true
            total += 1
    assert acc == pytest.approx(correct / total)


# ----------------------------------------------------------------- Lake's runs
@dataclass
class FakeRun:
    name: str
    train_images: torch.Tensor
    test_images: torch.Tensor
    answers: torch.Tensor


def test_lake_error_hand_value():
    g = torch.Generator().manual_seed(0)
    runs = []
    for wrong in (0, 2, 5):
        train = torch.randint(0, 256, (20, 4, 4), dtype=torch.uint8, generator=g)
        perm = torch.randperm(20, generator=g)
        test = train[perm]  # test image i IS training image perm[i]
        answers = perm.clone()
        answers[:wrong] = (answers[:wrong] + 1) % 20  # mark `wrong` answers as different
        runs.append(FakeRun(f"run{wrong}", train, test, answers))
    embed = lambda images: images.flatten(1).float()  # noqa: E731
    assert sl.metrics.lake_errors(embed, runs) == pytest.approx([0.0, 10.0, 25.0])
    # a distance that prefers the farthest image gets (almost) everything wrong
    assert min(sl.metrics.lake_errors(embed, runs, dist_fn=lambda a, b: -torch.cdist(a, b))) > 80


@pytest.mark.mirror
def test_lake_error_on_the_real_runs(mirror_root):
    runs = sl.data.load_lake_runs(root=mirror_root, size=28)
    assert len(runs) == 20
    # nearest neighbour on raw pixels: far better than chance (95 %), far worse than a trained net
    err = sum(sl.metrics.lake_errors(lambda im: im.flatten(1).float(), runs)) / len(runs)
    assert 40 < err < 95


def test_lake_table_lists_published_and_ours():
    table = sl.metrics.lake_table({"ours": 9.5})
    assert "Koch et al. Siamese convnet" in table and "8.0" in table and "ours" in table
    lines = table.splitlines()[2:]
    errs = [float(re.search(r"\s(\d+\.\d)\s", line).group(1)) for line in lines]
    assert errs == sorted(errs)
