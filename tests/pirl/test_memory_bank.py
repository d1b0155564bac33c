from __future__ import annotations

import torch
import torch.nn.functional as F

from pirl.memory_bank import MemoryBank


def test_entries_start_unit_length_and_reproducible() -> None:
    a, b = MemoryBank(100, 16, seed=3), MemoryBank(100, 16, seed=3)
    assert torch.equal(a.bank, b.bank)
    assert torch.allclose(a.bank.norm(dim=1), torch.ones(100))


def test_update_is_the_momentum_average_renormalised() -> None:
    bank = MemoryBank(10, 4, momentum=0.5)
    before = bank.bank.clone()
    f = F.normalize(torch.randn(2, 4), dim=1)
    indices = torch.tensor([3, 7])
    bank.update(indices, f)
    for row, i in enumerate(indices.tolist()):
        mixed = 0.5 * before[i] + 0.5 * f[row]
        assert torch.allclose(bank.bank[i], mixed / mixed.norm(), atol=1e-6)
    untouched = [i for i in range(10) if i not in (3, 7)]
    assert torch.equal(bank.bank[untouched], before[untouched])


def test_negatives_are_uniform_over_the_other_slots() -> None:
    bank = MemoryBank(5, 4, seed=0)
    indices = torch.tensor([0, 2, 4])
    draws = bank.sample_negatives(indices, 20000)
    assert draws.shape == (3, 20000)
    for row, own in enumerate(indices.tolist()):
        counts = torch.bincount(draws[row], minlength=5).float()
        assert counts[own] == 0
        others = counts[[i for i in range(5) if i != own]] / 20000
        assert torch.allclose(others, torch.full((4,), 0.25), atol=0.02)


def test_global_batch_draw_matches_per_process_slices() -> None:
    one = MemoryBank(50, 4, seed=1)
    ranks = [MemoryBank(50, 4, seed=1) for _ in range(2)]
    indices = torch.tensor([1, 2, 3, 4])
    combined = one.sample_negatives(indices, 7)
    parts = [
        ranks[r].sample_negatives(indices[2 * r : 2 * r + 2], 7, rank=r, world=2)
        for r in range(2)
    ]
    assert torch.equal(combined, torch.cat(parts))


def test_state_dict_carries_bank_and_sampling_state() -> None:
    bank = MemoryBank(20, 4, seed=0)
    bank.update(torch.tensor([1]), F.normalize(torch.randn(1, 4), dim=1))
    bank.sample_negatives(torch.tensor([0]), 5)
    copy = MemoryBank(20, 4, seed=99)
    copy.load_state_dict(bank.state_dict())
    assert torch.equal(copy.bank, bank.bank)
    indices = torch.tensor([3, 4])
    assert torch.equal(
        copy.sample_negatives(indices, 9), bank.sample_negatives(indices, 9)
    )
