"""ImageSet and to_float."""
from __future__ import annotations

import pytest
import torch

import siamlib as sl


def test_to_float_matches_division_by_255():
    x = torch.arange(256, dtype=torch.uint8).view(4, 8, 8)
    y = sl.data.to_float(x)
    assert y.shape == (4, 1, 8, 8) and y.dtype == torch.float32
    torch.testing.assert_close(y[:, 0], x.double().div(255).float())
    torch.testing.assert_close(sl.data.to_float(x.unsqueeze(1)), y)
    assert float(y.max()) == 1.0 and float(y.min()) == 0.0
    with pytest.raises(ValueError, match="grayscale"):
        sl.data.to_float(torch.zeros(2, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="dtype"):
        sl.data.to_float(torch.zeros(2, 4, 4, dtype=torch.int32))


def test_imageset_subset_and_validation():
    images = torch.arange(5, dtype=torch.uint8).view(5, 1, 1).expand(5, 2, 2).contiguous()
    s = sl.data.ImageSet(images, torch.tensor([0, 1, 0, 1, 2]), ["a", "b", "c"], groups=torch.tensor([0, 0, 0, 0, 1]))
    assert len(s) == 5 and len(s.class_names) == 3
    sub = s.subset([4, 1])
    assert torch.equal(sub.images[:, 0, 0], torch.tensor([4, 1], dtype=torch.uint8))
    assert sub.labels.tolist() == [2, 1] and sub.groups.tolist() == [1, 0] and sub.class_names == ["a", "b", "c"]
    masked = s.subset(s.labels == 0)
    assert masked.images[:, 0, 0].tolist() == [0, 2]
    with pytest.raises(ValueError, match="uint8"):
        sl.data.ImageSet(images.float(), torch.zeros(5), ["a"])
    with pytest.raises(ValueError, match="labels must be int64 of shape"):
        sl.data.ImageSet(images, torch.zeros(4, dtype=torch.int64), ["a"])
