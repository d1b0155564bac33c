"""Each loss against a naive loop written straight from the literal formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import pirl.loss as pirl_loss
from pirl.loss import PIRLLoss, info_nce_loss, nce_loss


def unit(*shape: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


def naive_nce(memory, negatives, v, tau, n_data, z=1.0, n=None):  # type: ignore[no-untyped-def]
    """docs/formulas.md: h(u,v) = exp(s/tau) / (exp(s/tau) + N/|D|) (exp divided by Z);
    loss = -log h(m_I, v) - sum_I' log(1 - h(m_I', v)); mean over the batch."""
    n = n or len(negatives[0])

    def h(u, w):  # type: ignore[no-untyped-def]
        s = float(sum(u[d] * w[d] for d in range(len(u))))
        e = math.exp(s / tau) / z
        return e / (e + n / n_data)

    total = 0.0
    for b in range(len(v)):
        loss = -math.log(h(memory[b], v[b]))
        for neg in negatives[b]:
            loss -= math.log(1 - h(neg, v[b]))
        total += loss
    return total / len(v)


def naive_info_nce(memory, negatives, v, tau):  # type: ignore[no-untyped-def]
    total = 0.0
    for b in range(len(v)):
        pos = math.exp(float(memory[b] @ v[b]) / tau)
        den = pos + sum(math.exp(float(neg @ v[b]) / tau) for neg in negatives[b])
        total += -math.log(pos / den)
    return total / len(v)


def test_nce_matches_the_formula() -> None:
    v, memory, negatives = (
        unit(4, 8, seed=0),
        unit(4, 8, seed=1),
        unit(4, 16, 8, seed=2),
    )
    for tau, n_data, z in [(0.07, 100, 1.0), (0.5, 20, 1.0), (0.07, 1000, 37.0)]:
        got = nce_loss(
            (memory * v).sum(1),
            torch.einsum("bnd,bd->bn", negatives, v),
            temperature=tau,
            n_data=n_data,
            log_z=math.log(z),
        )
        want = naive_nce(memory, negatives, v, tau, n_data, z)
        assert math.isclose(float(got), want, rel_tol=1e-9), (tau, float(got), want)


def test_nce_stays_finite_at_extreme_similarities() -> None:
    pos = torch.tensor([1.0, -1.0])
    neg = torch.tensor([[1.0, -1.0], [1.0, 1.0]])
    assert torch.isfinite(nce_loss(pos, neg, temperature=0.01, n_data=10))


def test_info_nce_matches_the_formula() -> None:
    v, memory, negatives = (
        unit(3, 8, seed=3),
        unit(3, 8, seed=4),
        unit(3, 10, 8, seed=5),
    )
    got = info_nce_loss(
        (memory * v).sum(1), torch.einsum("bnd,bd->bn", negatives, v), temperature=0.2
    )
    assert math.isclose(
        float(got), naive_info_nce(memory, negatives, v, 0.2), rel_tol=1e-9
    )


def naive_pirl(criterion, f, g, indices, negative_ids, lam, z):  # type: ignore[no-untyped-def]
    """negative_ids: one list of slots per image; an image's own slot is left out."""
    bank = criterion.memory_bank.bank.double()
    memory = [bank[i] for i in indices]
    negatives = [
        [bank[j] for j in row if j != i]
        for i, row in zip(indices, negative_ids, strict=False)
    ]
    tau, n_data, n = criterion.temperature, criterion.n_data, criterion.n_negatives
    k = len(g) if lam else 0  # the pretext term covers the first k images
    term_g = (
        naive_nce(memory[:k], negatives[:k], g.double(), tau, n_data, z, n) if k else 0
    )
    term_f = naive_nce(memory, negatives, f.double(), tau, n_data, z, n)
    return lam * term_g + (1 - lam) * term_f


@pytest.mark.parametrize("n_pretext", [4, 2])  # 2: pretext views of half the batch
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("lam", [0.5, 0.0, 1.0])
def test_pirl_loss_is_the_lambda_mix_with_shared_negatives(
    lam: float, shared: bool, n_pretext: int
) -> None:
    criterion = PIRLLoss(
        10,
        dim=8,
        lam=lam,
        n_negatives=12,
        seed=1,
        loss="nce",
        norm_constant=3.0,
        shared_negatives=shared,
    )
    f, g = unit(4, 8, seed=6).float(), unit(n_pretext, 8, seed=7).float()
    indices = torch.tensor([0, 5, 9, 3])
    bank = criterion.memory_bank
    state = bank.generator.get_state()
    loss = criterion(f, g, indices)
    bank.generator.set_state(state)
    if shared:
        ids = bank.sample_shared(12)
        negative_ids = [ids.tolist()] * 4
        assert any(int(i) in ids.tolist() for i in indices)  # masking is exercised
    else:
        negative_ids = bank.sample_negatives(indices, 12).tolist()
    want = naive_pirl(criterion, f, g, indices.tolist(), negative_ids, lam, 3.0)
    assert math.isclose(float(loss), want, rel_tol=1e-5), (lam, float(loss), want)


def test_npid_needs_no_pretext_and_z_is_estimated_once() -> None:
    criterion = PIRLLoss(100, dim=8, lam=0.0, n_negatives=20, seed=0, loss="nce")
    assert torch.isnan(criterion.log_z)
    f = unit(4, 8, seed=8).float()
    criterion(f, None, torch.arange(4))
    log_z = float(criterion.log_z)
    assert math.isfinite(log_z) and log_z > math.log(100)  # Z ~ |D| * mean exp(s/tau)
    criterion(unit(4, 8, seed=9).float(), None, torch.arange(4))
    assert float(criterion.log_z) == log_z
    assert "log_z" in criterion.state_dict()


def test_gradient_flows_to_both_embeddings() -> None:
    criterion = PIRLLoss(30, dim=8, n_negatives=5, loss="nce", norm_constant=1.0)
    f = unit(2, 8, seed=10).float().requires_grad_()
    g = unit(2, 8, seed=11).float().requires_grad_()
    criterion(f, g, torch.tensor([1, 2])).backward()
    assert f.grad is not None and g.grad is not None
    assert float(f.grad.abs().sum()) > 0 and float(g.grad.abs().sum()) > 0


@pytest.mark.parametrize("loss", ["nce", "infonce"])
def test_the_loss_is_float32_under_bfloat16_autocast(
    loss: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, torch.dtype] = {}
    originals = {"nce": pirl_loss.nce_loss, "infonce": pirl_loss.info_nce_loss}

    def spy(positive: torch.Tensor, negatives: torch.Tensor, **kw: object) -> object:
        seen.update(positive=positive.dtype, negatives=negatives.dtype)
        return originals[loss](positive, negatives, **kw)  # type: ignore[operator]

    monkeypatch.setattr(
        pirl_loss, {"nce": "nce_loss", "infonce": "info_nce_loss"}[loss], spy
    )
    criterion = PIRLLoss(30, dim=8, n_negatives=6, loss=loss, norm_constant=1.0)
    layer = torch.nn.Linear(8, 8)
    x = unit(4, 8, seed=12).float()
    layer.requires_grad_(False)
    state = criterion.memory_bank.generator.get_state()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        f = torch.nn.functional.normalize(layer(x), dim=1)  # bf16, as a model gives
        g = torch.nn.functional.normalize(layer(x.flip(0)), dim=1)
        assert f.dtype == torch.bfloat16
        value = criterion(f, g, torch.arange(4))
    assert seen == {"positive": torch.float32, "negatives": torch.float32}
    assert value.dtype == torch.float32
    criterion.memory_bank.generator.set_state(state)  # the same negatives
    want = criterion(f.float(), g.float(), torch.arange(4))
    assert value.item() == pytest.approx(want.item(), rel=1e-6)


def test_running_z_follows_the_negatives() -> None:
    kept = PIRLLoss(100, dim=8, lam=0.0, n_negatives=20, seed=0, loss="nce")
    running = PIRLLoss(
        100, dim=8, lam=0.0, n_negatives=20, seed=0, loss="nce", z_momentum=0.9
    )
    f = unit(4, 8, seed=8).float()
    for criterion in (kept, running):
        criterion(f, None, torch.arange(4))
    first = float(running.log_z)
    assert float(kept.log_z) == first  # the first batch sets Z either way
    # the bank fills with copies of one direction: negatives' similarity rises
    for criterion in (kept, running):
        criterion.memory_bank.bank[:] = torch.nn.functional.normalize(
            torch.ones(100, 8), dim=1
        )
    v = torch.nn.functional.normalize(torch.ones(4, 8), dim=1)
    kept(v, None, torch.arange(4))
    running(v, None, torch.arange(4))
    assert float(kept.log_z) == first
    batch_z = 100 * math.exp(1 / 0.07)  # every negative at s = 1
    want = math.log(0.9 * math.exp(first) + 0.1 * batch_z)
    assert float(running.log_z) == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="z_momentum"):
        PIRLLoss(10, z_momentum=1.0)


def test_the_library_loss_defaults_to_what_pirl_train_uses() -> None:
    # the old library default (NCE with Z from the first batch) climbs as the bank fills
    from pirl.train import TrainSettings

    assert PIRLLoss(10).loss == TrainSettings().loss == "infonce"
