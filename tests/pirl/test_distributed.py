"""Two gloo processes == one process with the combined batch (loss, bank, weights),
and torchrun ranks training on the tensor data path build its cache once."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from pirl.loss import PIRLLoss
from pirl.model import PIRLModel
from pirl.train import pirl_step

N_DATA, BATCH, STEPS = 24, 8, 3


class TinyEncoder(nn.Module):
    """No BatchNorm, so per-process and combined batches give the same gradients."""

    out_dim = 6

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 6), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def batches() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(STEPS):
        indices = torch.randperm(N_DATA, generator=g)[:BATCH]
        out.append(
            (
                torch.randn(BATCH, 3, 4, 4, generator=g),
                torch.randn(BATCH, 9, 3, 4, 4, generator=g),
                indices,
            )
        )
    return out


def run(rank: int, world: int, shared: bool) -> dict[str, object]:
    torch.manual_seed(0)
    model = PIRLModel(TinyEncoder(), dim=8)
    criterion = PIRLLoss(N_DATA, dim=8, n_negatives=10, seed=0, shared_negatives=shared)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    size = BATCH // world
    losses = []
    for images, patches, indices in batches():
        part = slice(rank * size, (rank + 1) * size)
        losses.append(
            pirl_step(
                model,
                criterion,
                optimizer,
                images[part],
                patches[part],
                indices[part],
                rank=rank,
                world=world,
            )
        )
    return {
        "losses": losses,
        "bank": criterion.memory_bank.bank,
        "model": model.state_dict(),
    }


def worker(rank: int, world: int, port: int, folder: str, shared: bool) -> None:
    torch.set_num_threads(1)
    # The store lives in the test's process: no worker hosts it (so none can leave
    # the other without it at teardown) and none races for a port.
    store = dist.TCPStore("127.0.0.1", port, is_master=False)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    try:
        torch.save(run(rank, world, shared), Path(folder) / f"rank{rank}.pt")
        dist.barrier()  # both done with every collective before either tears down
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("shared", [True, False])
def test_two_processes_match_one_with_the_combined_batch(
    tmp_path: Path, shared: bool
) -> None:
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    mp.spawn(worker, args=(2, store.port, str(tmp_path), shared), nprocs=2, join=True)
    single = run(0, 1, shared)
    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert result["losses"] == pytest.approx(single["losses"], rel=1e-5)
        assert torch.allclose(result["bank"], single["bank"], atol=1e-6)  # type: ignore[arg-type]
        for key, value in single["model"].items():  # type: ignore[attr-defined]
            assert torch.allclose(result["model"][key], value, atol=1e-6), key
    # the bank really moved, so the comparison means something
    assert not torch.allclose(
        single["bank"], PIRLLoss(N_DATA, dim=8, seed=0).memory_bank.bank
    )  # type: ignore[arg-type]


def train_worker(rank: int, world: int, port: int, folder: str, data: str) -> None:
    import os

    from pirl.train import TrainSettings, train

    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        PIRL_CACHE=str(Path(folder) / "cache"),
    )
    try:
        summary = train(
            TrainSettings(
                data=data,
                out=str(Path(folder) / "run"),
                arch="resnet10",
                width=4,
                batch_size=4,
                n_negatives=8,
                grid_size=30,
                patch_size=8,
                image_size=16,
                max_steps=3,
                data_path="tensor",
            )
        )
        torch.save(summary, Path(folder) / f"summary{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_torchrun_ranks_share_one_decoded_cache(
    tmp_path: Path, image_folder: Path
) -> None:
    args = (2, free_port(), str(tmp_path), str(image_folder))
    mp.spawn(train_worker, args=args, nprocs=2, join=True)
    summaries = [torch.load(tmp_path / f"summary{r}.pt") for r in (0, 1)]
    assert [s["steps"] for s in summaries] == [3, 3]
    assert {s["data_path"] for s in summaries} == {"tensor"}
    assert summaries[0]["images_seen"] == 3 * 4 * 2
    assert len(list((tmp_path / "cache").glob("*.u8"))) == 1
