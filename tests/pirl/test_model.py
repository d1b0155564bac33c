from __future__ import annotations

import pytest
import torch

from pirl.jigsaw_baseline import (
    JigsawClassifier,
    max_hamming_permutations,
    permutation_labels,
)
from pirl.model import PIRLModel
from pirl.resnet import resnet


@pytest.mark.parametrize("arch", ["resnet10", "resnet18", "resnet50"])
def test_resnet_widths_and_stems(arch: str) -> None:
    for cifar_stem, size in ((True, 16), (False, 64)):
        net = resnet(arch, width=4, cifar_stem=cifar_stem)
        out = net(torch.randn(2, 3, size, size))
        expansion = 4 if arch == "resnet50" else 1
        assert out.shape == (2, 4 * 8 * expansion) == (2, net.out_dim)
    with pytest.raises(ValueError, match="unknown arch"):
        resnet("resnet7")


def test_heads_f_and_g_are_unit_vectors_and_g_uses_the_patch_order() -> None:
    torch.manual_seed(0)
    model = PIRLModel(resnet("resnet10", width=4, cifar_stem=True), dim=16).eval()
    images, patches = torch.randn(3, 3, 32, 32), torch.randn(3, 9, 3, 12, 12)
    f, g = model(images, patches)
    assert f.shape == g.shape == (3, 16)  # type: ignore[union-attr]
    assert torch.allclose(f.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(g.norm(dim=1), torch.ones(3), atol=1e-5)  # type: ignore[union-attr]
    shuffled = model.embed_pretext(patches[:, torch.randperm(9)])
    assert not torch.allclose(shuffled, g)  # type: ignore[arg-type]  # concat order matters


def test_rotation_and_npid_models() -> None:
    rotation = PIRLModel(
        resnet("resnet10", width=4, cifar_stem=True), pretext="rotation"
    )
    _, g = rotation(torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16))
    assert g is not None and g.shape == (2, 128)
    npid = PIRLModel(resnet("resnet10", width=4, cifar_stem=True), pretext="none")
    f, g = npid(torch.randn(2, 3, 16, 16))
    assert g is None and not hasattr(npid, "g")


def test_permutation_set_is_far_apart_and_labels_round_trip() -> None:
    permutations = max_hamming_permutations(30, seed=1)
    assert permutations.shape == (30, 9)
    assert len({tuple(p.tolist()) for p in permutations}) == 30
    distance = (permutations[:, None] != permutations[None]).sum(-1)
    distance.fill_diagonal_(9)
    assert int(distance.min()) >= 6
    labels = torch.tensor([4, 0, 29])
    assert torch.equal(permutation_labels(permutations[labels], permutations), labels)
    with pytest.raises(ValueError, match="not in the permutation set"):
        permutation_labels(torch.arange(9)[None].flip(1) * 0, permutations)


def test_jigsaw_classifier_outputs_one_logit_per_permutation() -> None:
    model = JigsawClassifier(resnet("resnet10", width=4, cifar_stem=True), 30)
    assert model(torch.randn(2, 9, 3, 12, 12)).shape == (2, 30)
