"""Several processes (``torchrun``): the process group, each process's device,
torch's ``DistributedDataParallel``, SyncBatchNorm, and the loop's few collectives.

The backend follows the device: NCCL for CUDA, gloo for CPU. NCCL takes no CPU
tensor, so every tensor this package hands to a collective lives on the training
device (the memory bank's all-gather, the loss's mean, the stop flag). Each process
trains on ``cuda:LOCAL_RANK`` (``torch.cuda.set_device``). Gradients are averaged
by ``DistributedDataParallel`` (bucketed, overlapped with backward): PIRL's model
runs the encoder on the images and on the patches inside one ``forward``, which is
what DDP needs.

Checkpoints: only rank 0 writes ``--out/checkpoint.pt`` and every rank reads it on
``--resume``, so ``--out`` must be on a filesystem every node sees (one node, or a
shared filesystem across nodes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
from torch import nn


@dataclass(frozen=True)
class Group:
    """This process's place in the run: rank, number of processes and device."""

    rank: int
    world: int
    device: torch.device


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` as a device; CUDA is ``cuda:local_rank``.

    Raises:
        ValueError: CUDA asked for and not available (one line).
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device(name)


def join(device_name: str) -> Group:
    """The device and, under ``torchrun``, the process group (NCCL on CUDA, gloo on
    CPU), joined once; a group that the caller initialised is used as it is.

    Raises:
        ValueError: a CPU device in an NCCL group (one line).
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL and every default CUDA tensor use it
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if not dist.is_initialized():
        return Group(0, 1, device)
    if dist.get_backend() == "nccl" and device.type != "cuda":
        raise ValueError("an NCCL process group needs --device cuda")
    return Group(dist.get_rank(), dist.get_world_size(), device)


def several() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class SyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch (all
    processes), on any device: ``torch.nn.SyncBatchNorm`` refuses CPU tensors, so
    gloo runs (and the CPU tests of the CUDA path) use this one.

    The per-channel sum, sum of squares and count are all-reduced with autograd
    (the backward all-reduces their gradients), so gradients are those of one
    process holding the whole batch. Outside a group it is ``BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and several()):
            return super().forward(x)
        c = x.shape[1]
        xf = x.float()
        count = torch.full((1,), xf.numel() / c, device=x.device)
        stats = torch.cat([xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3)), count])
        stats = dist_nn.all_reduce(stats)
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0.0)
        if self.track_running_stats and self.running_mean is not None:
            assert self.running_var is not None and self.num_batches_tracked is not None
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum
                if m is None:  # cumulative average, as BatchNorm2d
                    m = 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                unbiased = var.detach() * n / (n - 1)
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
        shape = (1, c, 1, 1)
        y = (xf - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every ``BatchNorm2d`` of ``module`` as a synchronised one: torch's on CUDA,
    :class:`SyncBatchNorm` elsewhere. Parameters and buffers are kept (the same
    tensors), so an optimiser built before still holds them."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, SyncBatchNorm):
        sync = SyncBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        )
        if module.affine:
            sync.weight, sync.bias = module.weight, module.bias
        sync.running_mean, sync.running_var = module.running_mean, module.running_var
        sync.num_batches_tracked = module.num_batches_tracked
        sync.train(module.training)
        return sync
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device))
    return module


def data_parallel(
    model: nn.Module,
    device: torch.device,
    *,
    sync_bn: bool = False,
    find_unused_parameters: bool = False,
) -> nn.Module:
    """``model`` wrapped in ``DistributedDataParallel`` inside a group (else as it
    is), its BatchNorm synchronised first when ``sync_bn``. ``model`` must already
    be on ``device``; the wrapper shares its parameters."""
    if not several():
        return model
    if sync_bn:
        model = convert_sync_batchnorm(model, device)
    return nn.parallel.DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=find_unused_parameters,
    )


def mean_over_processes(value: torch.Tensor) -> float:
    """The mean of ``value`` (a scalar on the training device) over processes."""
    if several():
        value = value.detach().clone()
        dist.all_reduce(value)
        value /= dist.get_world_size()
    return float(value)


def any_process(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true in any process (also a synchronisation point)."""
    if not several():
        return flag
    tensor = torch.tensor([float(flag)], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())
