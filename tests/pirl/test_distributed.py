"""Two gloo processes under DistributedDataParallel, with BatchNorm in the encoder:
one step equals one process with the combined batch (SyncBatchNorm on), a run
resumed in two processes equals an uninterrupted one, every collective's tensor is
on the training device, and a checkpoint resumes only with its number of processes."""

from __future__ import annotations

import csv
import functools
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from pirl.distributed import data_parallel
from pirl.loss import PIRLLoss
from pirl.model import PIRLModel
from pirl.train import TrainSettings, pirl_step, train

N_DATA, BATCH, STEPS = 24, 8, 3


class TinyEncoder(nn.Module):
    """A convolution with BatchNorm: per-process statistics differ from the
    combined batch's, so matching one process needs synchronised BatchNorm."""

    out_dim = 6

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1),
            nn.BatchNorm2d(6),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

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


def run(rank: int, world: int, shared: bool, sync_bn: bool) -> dict[str, Any]:
    torch.manual_seed(0)
    model = PIRLModel(TinyEncoder(), dim=8)
    net = data_parallel(model, torch.device("cpu"), sync_bn=sync_bn)
    criterion = PIRLLoss(N_DATA, dim=8, n_negatives=10, seed=0, shared_negatives=shared)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9)
    size = BATCH // world
    losses = []
    for images, patches, indices in batches():
        part = slice(rank * size, (rank + 1) * size)
        losses.append(
            pirl_step(
                net,
                criterion,
                optimizer,
                images[part],
                patches[part],
                indices[part],
                rank=rank,
                world=world,
            )
        )
    state = getattr(net, "module", net).state_dict()
    return {"losses": losses, "bank": criterion.memory_bank.bank, "model": state}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def in_group(rank: int, world: int, port: int, job: Callable[[int, int], None]) -> None:
    """Run ``job(rank, world)`` in a gloo group whose store lives in the test's
    process (no worker hosts it, so none can leave the other without it)."""
    torch.set_num_threads(1)
    store = dist.TCPStore("127.0.0.1", port, is_master=False)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    try:
        job(rank, world)
        dist.barrier()  # both done with every collective before either tears down
    finally:
        dist.destroy_process_group()


def spawn(job: Callable[[int, int], None]) -> None:
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    mp.spawn(in_group, args=(2, store.port, job), nprocs=2, join=True)


def step_job(folder: str, rank: int, world: int) -> None:
    results = {
        f"shared={shared} sync={sync}": run(rank, world, shared, sync)
        for shared in (True, False)
        for sync in (True, False)
    }
    torch.save(results, Path(folder) / f"rank{rank}.pt")


def test_ddp_steps_equal_one_process_with_the_combined_batch(tmp_path: Path) -> None:
    spawn(functools.partial(step_job, str(tmp_path)))
    for shared in (True, False):
        single = run(0, 1, shared, sync_bn=False)
        for rank in range(2):
            both = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
            result = both[f"shared={shared} sync=True"]
            assert result["losses"] == pytest.approx(single["losses"], rel=1e-4)
            assert torch.allclose(result["bank"], single["bank"], atol=1e-5)
            for key, value in single["model"].items():  # BatchNorm stats included
                assert torch.allclose(
                    result["model"][key].float(), value.float(), atol=1e-5
                ), key
            # without synchronised BatchNorm each process normalises its own half
            per_process = both[f"shared={shared} sync=False"]
            assert per_process["losses"][1:] != pytest.approx(
                single["losses"][1:], rel=1e-4
            )
    # the bank really moved, so the comparison means something
    assert not torch.allclose(
        single["bank"], PIRLLoss(N_DATA, dim=8, seed=0).memory_bank.bank
    )


COLLECTIVES = (
    "all_reduce",
    "all_gather",
    "all_gather_into_tensor",
    "broadcast",
    "reduce",
    "reduce_scatter_tensor",
    "all_to_all_single",
    "gather",
    "scatter",
)


FACTORIES = {
    torch.tensor,
    torch.as_tensor,
    torch.from_numpy,
    torch.zeros,
    torch.ones,
    torch.empty,
    torch.full,
    torch.arange,
    torch.rand,
    torch.randn,
    torch.randint,
    torch.randperm,
    torch.scalar_tensor,
}
MOVES = {torch.Tensor.to, torch.Tensor.cuda}


def is_host(tensor: torch.Tensor) -> bool:
    return bool(getattr(tensor, "_pirl_host", False))


class HostTensors(TorchFunctionMode):
    """Pretends the training device is not the CPU, as under NCCL: a tensor made
    without a device argument is a *host* tensor (it would sit on the CPU beside a
    GPU), results of operations on host tensors alone are host tensors, and an
    explicit move (``.to(device)``) gives a device tensor. NCCL refuses host
    tensors; :func:`record_collectives` records them."""

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in FACTORIES:
            host = "device" not in kwargs
        elif func in MOVES:
            targets = [*args[1:], kwargs.get("device")]
            moved = any(isinstance(t, torch.device | str) for t in targets)
            if moved and out is args[0]:  # a move to where it is: a new object
                out = out.view_as(out)
            host = not moved and is_host(args[0])
        else:
            inputs = [
                t
                for t in tree_flatten((args, kwargs))[0]
                if isinstance(t, torch.Tensor)
            ]
            host = bool(inputs) and all(is_host(t) for t in inputs)
        if host:
            for tensor in tree_flatten(out)[0]:
                if isinstance(tensor, torch.Tensor):
                    tensor._pirl_host = True  # type: ignore[attr-defined]
        return out


def record_collectives(calls: list[tuple[str, str]]) -> None:
    """Wrap torch.distributed's collectives to record each tensor's device
    ('host' for a host tensor, see :class:`HostTensors`)."""

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            for value in [*args, *kwargs.values()]:
                tensors = value if isinstance(value, list) else [value]
                for tensor in tensors:
                    if isinstance(tensor, torch.Tensor):
                        device = "host" if is_host(tensor) else str(tensor.device)
                        calls.append((name, device))
            return original(*args, **kwargs)

        return recorded

    for name in COLLECTIVES:
        setattr(dist, name, wrap(name, getattr(dist, name)))


def tiny_settings(data: str, out: Path, **options: Any) -> TrainSettings:
    return TrainSettings(
        data=data,
        out=str(out),
        arch="resnet10",
        width=4,
        batch_size=4,
        n_negatives=8,
        grid_size=30,
        patch_size=8,
        image_size=16,
        data_path="tensor",
        sync_bn=True,
        log_every=1,
        **options,
    )


def train_job(folder: str, data: str, rank: int, world: int) -> None:
    import os

    os.environ["PIRL_CACHE"] = str(Path(folder) / "cache")
    calls: list[tuple[str, str]] = []
    record_collectives(calls)
    root = Path(folder)
    with HostTensors():  # slows every torch call: around one run only
        summaries = [train(tiny_settings(data, root / "straight", max_steps=6))]
    summaries += [
        train(tiny_settings(data, root / "split", max_steps=3)),
        train(tiny_settings(data, root / "split", max_steps=6, resume=True)),
    ]
    torch.save({"summaries": summaries, "calls": calls}, root / f"train{rank}.pt")


def logged_losses(folder: Path) -> list[float]:
    with (folder / "log.csv").open() as handle:
        return [float(row["losses/loss"]) for row in csv.DictReader(handle)]


def test_two_processes_resume_exactly_with_collectives_on_the_device(
    tmp_path: Path, image_folder: Path
) -> None:
    spawn(functools.partial(train_job, str(tmp_path), str(image_folder)))
    runs = [torch.load(tmp_path / f"train{r}.pt") for r in (0, 1)]
    straight, _, resumed = runs[0]["summaries"]
    assert straight["steps"] == resumed["steps"] == 6  # 5 steps an epoch
    assert straight["images_seen"] == 6 * 4 * 2
    assert {s["data_path"] for r in runs for s in r["summaries"]} == {"tensor"}
    assert len(list((tmp_path / "cache").glob("*.u8"))) == 1  # ranks share it
    assert logged_losses(tmp_path / "split") == pytest.approx(
        logged_losses(tmp_path / "straight"), rel=1e-5
    )
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)
    for key, value in a["model"].items():
        assert torch.allclose(value.float(), b["model"][key].float(), atol=1e-6), key
    bank = "memory_bank.bank"
    assert torch.allclose(a["criterion"][bank], b["criterion"][bank], atol=1e-6)
    # Every tensor handed to a collective is on the training device, none a host
    # tensor that NCCL would refuse: the stop flag, the loss, the bank's
    # all-gather, SyncBatchNorm's statistics.
    for run_ in runs:
        names = {name for name, _ in run_["calls"]}
        assert {"all_reduce", "all_gather"} <= names
        assert {device for _, device in run_["calls"]} == {"cpu"}
    # a 2-process checkpoint does not resume in one process
    settings = tiny_settings(str(image_folder), tmp_path / "split", max_steps=9)
    settings.resume = True
    with pytest.raises(ValueError, match="made by 2 processes, this run has 1"):
        train(settings)
