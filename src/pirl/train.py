"""Self-supervised training: PIRL, NPID (lambda = 0) and the covariant Jigsaw baseline.

Reads top to bottom: the settings dataclass, what each method is built from, one
training step, the loop. SGD with momentum, cosine learning rate (optionally scaled
with the global batch and warmed up), weight decay on weights only (not on BatchNorm
or biases). Every process of a ``torchrun`` launch (gloo on CPU, NCCL on GPU) sees
its slice of each global batch; torch's ``DistributedDataParallel`` averages the
gradients (optionally with synchronised BatchNorm) and the memory bank is updated
from the all-gathered batch, so every process holds the same bank
(:mod:`pirl.distributed`).

The images come from one of two data paths: ``files`` decodes and augments every
image with PIL in loader processes (:mod:`pirl.data`, :mod:`pirl.transforms`);
``tensor`` decodes the dataset once into a memory-mapped uint8 cache and augments
whole batches in torch (:mod:`pirl.tensor_data`, :mod:`pirl.batch_transforms`);
``auto`` takes the tensor path when the decoded images fit a memory limit.

A checkpoint (model, optimiser, schedule position, memory bank with its sampling
generator) is written after every epoch, every ``checkpoint_every`` steps, on
Ctrl-C, on SIGTERM (what a cluster sends before it preempts a job) and when the time
budget or ``max_steps`` stops the run; ``resume`` continues exactly: the data order
and every augmentation are keyed by ``(seed, epoch, index)`` (see :mod:`pirl.data`),
and the log is cut back to the checkpoint's step.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from basekit.atomic import atomic_torch_save, atomic_write, atomic_write_json
from basekit.safe_load import load_tensors
from pirl.batch_transforms import BatchViews
from pirl.data import DataError, EpochBatchSampler, ImageDataset, ImageSource
from pirl.distributed import (
    Group,
    any_process,
    data_parallel,
    join,
    mean_over_processes,
)
from pirl.jigsaw_baseline import (
    JigsawClassifier,
    max_hamming_permutations,
    permutation_labels,
)
from pirl.loss import PIRLLoss
from pirl.model import PIRLModel
from pirl.resnet import resnet
from pirl.tensor_data import (
    DEFAULT_MEMORY_LIMIT_GB,
    DecodedDataset,
    DecodedImages,
    takes_tensor_path,
)
from pirl.transforms import ImageView, Jigsaw, Rotation, Views

METHODS = ("pirl", "npid", "jigsaw")
CHECKPOINT = "checkpoint.pt"
LOG = "log.csv"


@dataclass
class TrainSettings:
    """Settings of ``pirl train``."""

    data: str = ""
    """folder (class subfolders optional) or .zip of training images"""
    under: str | None = None
    """only images below this sub-folder of --data (e.g. 'train' in the CIFAR-10 zip)"""
    out: str = "out/pirl"
    """run folder: checkpoint.pt, log.csv, settings.json"""
    method: str = "pirl"
    """pirl | npid (PIRL with lambda = 0, no pretext view) | jigsaw (covariant)"""
    pretext: str = "jigsaw"
    """PIRL's pretext transform: jigsaw | rotation"""
    arch: str = "resnet10"
    """encoder architecture (the default, with --width 16, is the CIFAR-10
    benchmark's measured setting; the paper's is resnet50 at width 64)"""
    width: int = 16
    """channels of the encoder's first stage (64 = the usual ResNet)"""
    cifar_stem: bool = True
    """3x3 stride-1 stem without max-pool (for small images such as CIFAR's 32 px)"""
    image_size: int = 32
    """side of the whole-image view in pixels"""
    grid_size: int = 30
    """jigsaw: the random crop is resized to this before the 3x3 cut (30 on 32-px
    images: no upsampling; chosen on a validation split, see README.md)"""
    patch_size: int = 8
    """jigsaw: side of the random crop inside each cell (cell = grid_size // 3)"""
    epochs: int = 200
    """epochs; the cosine schedule spans them (or the time budget if shorter)"""
    batch_size: int = 128
    """images per step and process"""
    lr: float = 0.06
    """peak learning rate (SGD)"""
    reference_batch: int | None = None
    """linear scaling rule (Goyal et al., 2017): the peak learning rate is --lr x
    global batch (batch size x processes) / this; default: --lr as given"""
    warmup_epochs: float = 0.0
    """linear learning-rate warm-up over these epochs, for large global batches
    (Goyal et al., 2017)"""
    momentum: float = 0.9
    """SGD momentum"""
    weight_decay: float = 5e-4
    """weight decay on conv/linear weights (never on BatchNorm or biases)"""
    lam: float = 0.5
    """PIRL's lambda: weight of the pretext term (ignored by npid and jigsaw)"""
    pretext_fraction: float = 1.0
    """PIRL: share of each batch whose pretext view is encoded; the pretext term is
    averaged over those images (1 = the paper; less trades it for throughput)"""
    temperature: float = 0.07
    """NCE temperature tau"""
    n_negatives: int = 4096
    """negatives per image drawn from the memory bank (paper: 32000)"""
    loss: str = "infonce"
    """contrastive loss: infonce | nce (the paper's; with a Z kept from the first
    batch its logged loss climbs as the memory bank fills, see --z-momentum)"""
    z_momentum: float | None = None
    """nce: re-estimate the normalising constant Z every step as a moving average
    with this momentum (e.g. 0.9); default: estimate it on the first batch and keep
    it (NPID, VISSL)"""
    shared_negatives: bool = True
    """one draw of negatives for the whole batch (fast on CPU) instead of per image"""
    bank_momentum: float = 0.5
    """memory bank momentum"""
    n_permutations: int = 100
    """jigsaw baseline: number of permutations (maximal Hamming distance)"""
    seed: int = 0
    """seed of the model, data order, augmentations and memory bank"""
    workers: int | None = None
    """data-loading worker processes (0 = load in the training process; default: 1
    on the files path, 0 on the tensor path, whose batches cost little to make)"""
    data_path: str = "auto"
    """tensor: decode the images once into a memory-mapped uint8 cache and augment
    whole batches in torch | files: decode and augment every image with PIL (for
    datasets too large to decode) | auto: tensor when the decoded images fit in
    --memory-limit-gb"""
    memory_limit_gb: float = DEFAULT_MEMORY_LIMIT_GB
    """auto: the largest decoded dataset (images x side x side x 3 bytes) that takes
    the tensor path"""
    decoded_size: int | None = None
    """tensor path: side of the decoded images (default: --image-size); images of
    another size are resized (shorter side) and centre-cropped to it"""
    cache_dir: str | None = None
    """folder of dataset indexes and, on the tensor path, decoded datasets
    (default: $PIRL_CACHE, else the user's cache folder)"""
    limit: int | None = None
    """train on a seeded random subset of this many images"""
    budget_minutes: float | None = None
    """stop after this much training time; the cosine schedule then ends with it"""
    max_steps: int | None = None
    """stop after this many steps (does not change the schedule)"""
    checkpoint_every: int | None = None
    """also write the checkpoint every this many steps (it is always written after
    every epoch, on Ctrl-C, on SIGTERM and at a stop)"""
    resume: bool = False
    """continue from out/checkpoint.pt"""
    device: str = "auto"
    """auto | cpu | cuda"""
    amp: bool = True
    """bfloat16 autocast on CUDA (no effect on CPU); the loss stays float32"""
    sync_bn: bool = False
    """several processes: BatchNorm statistics of the global batch, not of each
    process's slice"""
    channels_last: bool = True
    """keep weights and activations channels-last (NHWC): the faster convolution
    layout of oneDNN on CPU and of tensor cores on GPU"""
    log_every: int = 20
    """steps between log rows"""
    progress: bool = False
    """show a progress bar"""


# --- what each method is built from -------------------------------------------------


def build_encoder(settings: TrainSettings) -> nn.Module:
    return resnet(settings.arch, width=settings.width, cifar_stem=settings.cifar_stem)


def build_method(
    settings: TrainSettings, n_data: int
) -> tuple[nn.Module, PIRLLoss | None, Views, torch.Tensor | None]:
    """Model, loss (PIRL/NPID), transform and permutation set (Jigsaw) of a method."""
    if settings.method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {settings.method!r}")
    if not 0.0 < settings.pretext_fraction <= 1.0:
        raise ValueError(
            f"pretext_fraction must be in (0, 1], got {settings.pretext_fraction}"
        )
    torch.manual_seed(settings.seed)  # the same initial model in every process
    encoder = build_encoder(settings)
    view = ImageView(settings.image_size)
    if settings.method == "jigsaw":
        permutations = max_hamming_permutations(settings.n_permutations)
        jigsaw = Jigsaw(
            settings.grid_size, settings.patch_size, permutations=permutations
        )
        model = JigsawClassifier(encoder, settings.n_permutations)
        return model, None, Views(jigsaw), permutations
    if settings.method == "npid":
        pretext, lam, transform = "none", 0.0, Views(view)
    elif settings.pretext == "jigsaw":
        pretext, lam = "jigsaw", settings.lam
        transform = Views(view, Jigsaw(settings.grid_size, settings.patch_size))
    elif settings.pretext == "rotation":
        pretext, lam = "rotation", settings.lam
        transform = Views(view, Rotation(settings.image_size))
    else:
        raise ValueError(
            f"pretext must be jigsaw or rotation, got {settings.pretext!r}"
        )
    criterion = PIRLLoss(
        n_data,
        lam=lam,
        temperature=settings.temperature,
        n_negatives=settings.n_negatives,
        loss=settings.loss,
        momentum=settings.bank_momentum,
        seed=settings.seed,
        z_momentum=settings.z_momentum,
        shared_negatives=settings.shared_negatives,
    )
    return PIRLModel(encoder, pretext=pretext), criterion, transform, None


def build_dataset(
    settings: TrainSettings,
    source: ImageSource,
    transform: Views,
    device: torch.device,
) -> ImageDataset | DecodedDataset:
    """The training data on the path ``settings.data_path`` picks (see its help)."""
    side = settings.decoded_size or settings.image_size
    n, limit = len(source), settings.memory_limit_gb
    if not takes_tensor_path(settings.data_path, n, side, limit):
        return ImageDataset(source, transform)
    images = DecodedImages.open(
        source, side=side, cache_dir=settings.cache_dir, progress=settings.progress
    )
    # Worker processes cannot use CUDA; in the training process augment on the GPU.
    in_process = settings.workers in (None, 0)
    on_device = device if device.type == "cuda" and in_process else None
    return DecodedDataset(images, BatchViews(transform), device=on_device)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv and linear weights; none on BatchNorm and biases."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def cosine_lr(base: float, progress: float) -> float:
    """``base * (1 + cos(pi * progress)) / 2``, progress clipped to [0, 1]."""
    return base * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def peak_lr(settings: TrainSettings, world: int) -> float:
    """``--lr``, scaled linearly with the global batch when ``reference_batch`` is
    set (Goyal et al., 2017, "Accurate, Large Minibatch SGD", section 2.1)."""
    if settings.reference_batch is None:
        return settings.lr
    if settings.reference_batch <= 0:
        raise ValueError(
            f"reference_batch must be positive: {settings.reference_batch}"
        )
    return settings.lr * settings.batch_size * world / settings.reference_batch


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up: ``(step + 1) / warmup_steps`` until it reaches 1 (Goyal et
    al., 2017, section 2.2, gradual warm-up)."""
    return 1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps)


# --- one step -----------------------------------------------------------------------


def pirl_step(
    model: nn.Module,
    criterion: PIRLLoss,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    pretext: torch.Tensor | None,
    indices: torch.Tensor,
    *,
    rank: int = 0,
    world: int = 1,
    autocast: contextlib.AbstractContextManager[Any] | None = None,
) -> float:
    """One PIRL/NPID step: loss, backward, SGD, bank update.

    ``model`` is the ``DistributedDataParallel`` wrapper in several processes (it
    averages the gradients). The embeddings may be computed under ``autocast``; the
    loss never is (its logits, exp and log stay float32).

    Returns the loss averaged over all processes (= the loss of the global batch).
    """
    with autocast or contextlib.nullcontext():
        f, g = model(images, pretext)
    loss = criterion(f, g, indices, rank=rank, world=world)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    criterion.update(indices, f.detach())  # the bank moves after the loss
    return mean_over_processes(loss.detach())


def jigsaw_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    patches: torch.Tensor,
    labels: torch.Tensor,
    *,
    autocast: contextlib.AbstractContextManager[Any] | None = None,
) -> float:
    """One covariant Jigsaw step: cross-entropy over the permutation set."""
    with autocast or contextlib.nullcontext():
        logits = model(patches)
    loss = F.cross_entropy(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return mean_over_processes(loss.detach())


# --- the loop -----------------------------------------------------------------------


class Preempted(Exception):
    """SIGTERM stopped the run; its checkpoint is saved (``--resume`` continues)."""


class Terminations:
    """Counts SIGTERM while installed (main thread only): the loop then stops at the
    end of its step, saves and raises :class:`Preempted`, instead of dying with
    the work since the last checkpoint."""

    def __init__(self) -> None:
        self.received = False
        self.previous: Any = None
        self.installed = threading.current_thread() is threading.main_thread()

    def __enter__(self) -> Terminations:
        if self.installed:
            self.previous = signal.signal(signal.SIGTERM, self.handle)
        return self

    def handle(self, signum: int, frame: Any) -> None:
        self.received = True

    def __exit__(self, *exc: object) -> None:
        if self.installed:
            signal.signal(signal.SIGTERM, self.previous)


def ignore_sigterm(worker_id: int) -> None:
    """Data-loader workers leave SIGTERM to the training process, which stops them
    after saving (a cluster signals every process of the job)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class Logger:
    """CSV log (appended across resumes, cut back to the checkpoint's step when a
    run resumes) and TensorBoard when it is installed."""

    def __init__(self, folder: Path, enabled: bool, *, resume_step: int = 0) -> None:
        self.path = folder / LOG
        self.enabled = enabled
        self.writer: Any = None
        if enabled:
            if resume_step:
                self.trim(resume_step)
            try:
                from torch.utils.tensorboard import SummaryWriter

                # purge_step hides the events a resumed run writes again
                purge = resume_step + 1 if resume_step else None
                self.writer = SummaryWriter(
                    str(folder / "tensorboard"), purge_step=purge
                )
            except ImportError:  # tensorboard not installed: CSV only
                self.writer = None

    def trim(self, step: int) -> None:
        """Drop the rows after ``step`` (logged after the checkpoint, so repeated)."""
        if not self.path.exists():
            return
        with self.path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        kept = [r for r in rows if float(r.get("charts/step") or 0) <= step]
        if len(kept) == len(rows) or not rows:
            return
        text = io.StringIO()
        out = csv.DictWriter(text, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(kept)
        atomic_write(self.path, lambda handle: handle.write(text.getvalue().encode()))

    def log(self, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        new = not self.path.exists()
        with self.path.open("a", newline="") as handle:
            out = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                out.writeheader()
            out.writerow(row)
        if self.writer is not None:
            step = int(row["charts/step"])
            for key, value in row.items():
                if key != "charts/step":
                    self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def batches(
    dataset: ImageDataset | DecodedDataset,
    settings: TrainSettings,
    epoch: int,
    start: int,
    rank: int,
    world: int,
) -> Iterator[tuple[Any, torch.Tensor]]:
    sampler = EpochBatchSampler(
        len(dataset),
        settings.batch_size,
        seed=settings.seed,
        epoch=epoch,
        rank=rank,
        world=world,
        start=start,
    )
    if isinstance(dataset, DecodedDataset):  # one item is a whole batch
        workers = 0 if settings.workers is None else settings.workers
        yield from DataLoader(
            dataset,
            sampler=sampler,
            batch_size=None,
            num_workers=workers,
            worker_init_fn=ignore_sigterm if workers else None,
        )
    else:
        workers = 1 if settings.workers is None else settings.workers
        yield from DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=workers,
            worker_init_fn=ignore_sigterm if workers else None,
        )


@dataclass
class Parts:
    """What one training run optimises: the model, what runs its forward (the
    ``DistributedDataParallel`` wrapper in several processes, else the model), its
    loss (None for jigsaw, which classifies), the optimiser, and the jigsaw's
    permutations."""

    model: nn.Module
    net: nn.Module
    criterion: PIRLLoss | None
    optimizer: torch.optim.Optimizer
    permutations: torch.Tensor | None


def open_source(settings: TrainSettings) -> ImageSource:
    """The images ``settings.data`` names.

    Raises:
        DataError: none given.
    """
    if not settings.data:
        raise DataError("no training data given (--data)")
    return ImageSource(
        settings.data,
        under=settings.under,
        limit=settings.limit,
        seed=settings.seed,
        cache_dir=settings.cache_dir,
    )


def build_parts(
    settings: TrainSettings, n: int, device: torch.device
) -> tuple[Parts, Any]:
    """The model, loss and optimiser on ``device``, and the method's transform."""
    model, criterion, transform, permutations = build_method(settings, n)
    model.to(device)
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    # pirl at lambda 0 computes g but never uses it: DDP must be told
    unused = settings.method == "pirl" and settings.lam == 0
    net = data_parallel(
        model, device, sync_bn=settings.sync_bn, find_unused_parameters=unused
    )
    if net is not model:  # the synchronised BatchNorm replaced modules of the model
        model = net.module  # type: ignore[assignment]
    if criterion is not None:
        criterion.to(device)
    optimizer = torch.optim.SGD(
        parameter_groups(model, settings.weight_decay),
        lr=settings.lr,
        momentum=settings.momentum,
    )
    return Parts(model, net, criterion, optimizer, permutations), transform


def start_or_resume(
    settings: TrainSettings, parts: Parts, checkpoint: Path, n: int, group: Group
) -> dict[str, Any]:
    """The run's progress: from ``checkpoint`` (``--resume``), else from zero (the
    output folder made, an old log removed).

    Raises:
        DataError: nothing to resume.
        ValueError: the checkpoint was made with other data, another method or
            another number of processes.
    """
    if not settings.resume:
        if group.rank == 0:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            (checkpoint.parent / LOG).unlink(missing_ok=True)
        return {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "elapsed": 0.0}
    if not checkpoint.exists():
        raise DataError(f"nothing to resume: {checkpoint} does not exist")
    saved = load_tensors(checkpoint, what="pirl checkpoint")
    if saved["n_data"] != n:
        raise ValueError(
            f"checkpoint was made on {saved['n_data']} images, this run has {n}"
        )
    if saved["settings"]["method"] != settings.method:
        raise ValueError(
            f"checkpoint was made by method {saved['settings']['method']}, "
            f"this run is {settings.method}"
        )
    if saved.get("world", 1) != group.world:
        raise ValueError(
            f"checkpoint was made by {saved.get('world', 1)} processes, this run has "
            f"{group.world}: resume with the same number (the batches depend on it)"
        )
    parts.model.load_state_dict(saved["model"])
    parts.optimizer.load_state_dict(saved["optimizer"])
    if parts.criterion is not None:
        parts.criterion.load_state_dict(saved["criterion"])
    return dict(saved["state"])


def save_checkpoint(
    checkpoint: Path,
    parts: Parts,
    state: dict[str, Any],
    settings: TrainSettings,
    n: int,
    world: int,
) -> None:
    """Everything :func:`start_or_resume` needs, written atomically."""
    criterion = parts.criterion
    atomic_torch_save(
        {
            "model": parts.model.state_dict(),
            "optimizer": parts.optimizer.state_dict(),
            "criterion": None if criterion is None else criterion.state_dict(),
            "state": dict(state),
            "n_data": n,
            "world": world,
            "settings": asdict(settings),
        },
        checkpoint,
    )


def train_step(
    settings: TrainSettings,
    parts: Parts,
    views: Any,
    indices: torch.Tensor,
    device: torch.device,
    autocast: Any,
    rank: int,
    world: int,
) -> float:
    """One optimiser step of the method on one batch; returns its loss."""
    indices = indices.to(device)
    if settings.method == "jigsaw":
        patches, perms = views[0]
        labels = permutation_labels(perms, parts.permutations).to(device)  # type: ignore[arg-type]
        return jigsaw_step(
            parts.net, parts.optimizer, patches.to(device), labels, autocast=autocast
        )
    assert parts.criterion is not None
    images = views[0].to(device)
    pretext = views[1][0] if len(views) > 1 else None
    if isinstance(pretext, torch.Tensor):
        keep = max(1, round(settings.pretext_fraction * len(pretext)))
        pretext = pretext[:keep].to(device)
    return pirl_step(
        parts.net,
        parts.criterion,
        parts.optimizer,
        images,
        pretext,
        indices,
        rank=rank,
        world=world,
        autocast=autocast,
    )


class Clock:
    """Training time across resumes, and when to stop: the time budget,
    ``max_steps`` or SIGTERM (every process stops at the same step)."""

    def __init__(
        self, settings: TrainSettings, state: dict[str, Any], group: Group
    ) -> None:
        self.settings, self.state, self.device = settings, state, group.device
        self.budget_s = (
            None if settings.budget_minutes is None else settings.budget_minutes * 60
        )
        self.before = float(state["elapsed"])
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return self.before + time.monotonic() - self.start

    def progress(self, total_steps: int) -> float:
        """The share of the run done: by steps, or by the time budget if ahead."""
        progress = self.state["global_step"] / total_steps
        if self.budget_s is not None:
            progress = max(progress, self.elapsed() / self.budget_s)
        return progress

    def should_stop(self, terminated: bool = False) -> bool:
        s = self.settings
        stop = (
            terminated
            or (self.budget_s is not None and self.elapsed() >= self.budget_s)
            or (s.max_steps is not None and self.state["global_step"] >= s.max_steps)
        )
        return any_process(stop, self.device)  # every process stops at the same step


def check_batches(settings: TrainSettings, n: int, world: int) -> int:
    """Steps per epoch of ``n`` images.

    Raises:
        DataError: fewer images than one global batch.
        ValueError: a checkpoint interval that is not positive.
    """
    steps_per_epoch = EpochBatchSampler.steps_per_epoch(n, settings.batch_size, world)
    if steps_per_epoch == 0:
        raise DataError(
            f"{n} usable images, fewer than one batch of {settings.batch_size * world}"
        )
    if settings.checkpoint_every is not None and settings.checkpoint_every <= 0:
        raise ValueError(
            f"checkpoint_every must be positive: {settings.checkpoint_every}"
        )
    return steps_per_epoch


@dataclass
class Schedule:
    """The learning rate of each step: cosine from the peak over the run (or its
    time budget), linearly warmed up over the first ``warmup_steps``."""

    peak: float
    warmup_steps: int
    total_steps: int

    @classmethod
    def of(cls, settings: TrainSettings, steps_per_epoch: int, world: int) -> Schedule:
        peak = peak_lr(settings, world)
        warmup_steps = round(settings.warmup_epochs * steps_per_epoch)
        return cls(peak, warmup_steps, settings.epochs * steps_per_epoch)

    def lr(self, clock: Clock, step: int) -> float:
        lr = cosine_lr(self.peak, clock.progress(self.total_steps))
        lr *= warmup_factor(step, self.warmup_steps)
        return lr


def autocast_for(settings: TrainSettings, device: torch.device) -> Any:
    """bfloat16 autocast on CUDA when ``--amp``; None (float32) otherwise."""
    if settings.amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return None


def write_run_settings(
    out: Path, settings: TrainSettings, source: ImageSource, run: dict[str, Any]
) -> None:
    """``settings.json``: the settings and what this run made of them."""
    atomic_write_json(
        out / "settings.json",
        {
            **asdict(settings),
            "n_data": len(source),
            "world": run["world"],
            "peak_lr": run["peak_lr"],
            "skipped": len(source.skipped),
            "data_path_used": run["data_path"],
        },
    )


class TrainingLoop:
    """The epochs of one run: a step per batch, a log row every ``log_every``
    steps, a checkpoint after every epoch (and every ``checkpoint_every`` steps),
    until the epochs are done or the :class:`Clock` says stop.

    Made after the run's progress is known (started or resumed): it cuts the log
    back to that step, and the clock starts then."""

    def __init__(
        self,
        settings: TrainSettings,
        parts: Parts,
        dataset: ImageDataset | DecodedDataset,
        n: int,
        group: Group,
        state: dict[str, Any],
        schedule: Schedule,
        checkpoint: Path,
        terminations: Terminations,
    ) -> None:
        self.settings, self.parts, self.dataset = settings, parts, dataset
        self.group, self.state, self.schedule = group, state, schedule
        self.checkpoint, self.terminations = checkpoint, terminations
        self.n = n
        self.autocast = autocast_for(settings, group.device)
        rank, step = group.rank, int(state["global_step"])
        self.logger = Logger(Path(settings.out), enabled=rank == 0, resume_step=step)
        self.bar = tqdm(
            total=schedule.total_steps,
            initial=step,
            disable=not (settings.progress and rank == 0),
            desc=settings.method,
        )
        parts.model.train()
        self.clock = Clock(settings, state, group)
        self.last_loss = float("nan")
        self.window_images, self.window_start = 0, time.monotonic()
        self.stopped = self.clock.should_stop(terminations.received)

    def save(self) -> None:
        if self.group.rank == 0:
            save_checkpoint(
                self.checkpoint,
                self.parts,
                self.state,
                self.settings,
                self.n,
                self.group.world,
            )

    def run(self) -> None:
        """Train until done or stopped; a Ctrl-C saves the checkpoint first."""
        state = self.state
        try:
            while not self.stopped and state["epoch"] < self.settings.epochs:
                self.run_epoch(int(state["epoch"]))
        except KeyboardInterrupt:
            state["elapsed"] = self.clock.elapsed()
            self.save()
            raise
        finally:
            self.bar.close()
            self.logger.close()

    def run_epoch(self, epoch: int) -> None:
        """The rest of ``epoch`` (from the step it was left at), then a checkpoint."""
        state, group, every = self.state, self.group, self.settings.checkpoint_every
        start = int(state["step_in_epoch"])
        for views, indices in batches(
            self.dataset, self.settings, epoch, start, group.rank, group.world
        ):
            self.step(epoch, views, indices)
            self.stopped = self.clock.should_stop(self.terminations.received)
            if self.stopped:
                break
            if every and state["global_step"] % every == 0:
                self.save()
        if not self.stopped:
            state["epoch"] += 1
            state["step_in_epoch"] = 0
        self.save()

    def step(self, epoch: int, views: Any, indices: torch.Tensor) -> None:
        """One optimiser step at the schedule's learning rate, counted and logged."""
        settings, state, parts, group = (
            self.settings,
            self.state,
            self.parts,
            self.group,
        )
        lr = self.schedule.lr(self.clock, int(state["global_step"]))
        for param_group in parts.optimizer.param_groups:
            param_group["lr"] = lr
        self.last_loss = train_step(
            settings,
            parts,
            views,
            indices,
            group.device,
            self.autocast,
            group.rank,
            group.world,
        )
        state["global_step"] += 1
        state["step_in_epoch"] += 1
        state["elapsed"] = self.clock.elapsed()
        self.window_images += settings.batch_size * group.world
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{self.last_loss:.3f}")
        if state["global_step"] % settings.log_every == 0:
            self.log(epoch, lr)

    def log(self, epoch: int, lr: float) -> None:
        """A log row; the throughput is over the steps since the last row."""
        now = time.monotonic()
        self.logger.log(
            {
                "charts/step": self.state["global_step"],
                "charts/epoch": epoch,
                "charts/lr": lr,
                "charts/images_per_s": self.window_images / (now - self.window_start),
                "charts/elapsed_s": self.state["elapsed"],
                "losses/loss": self.last_loss,
            }
        )
        self.window_images, self.window_start = 0, now


def train(
    settings: TrainSettings, *, source: ImageSource | None = None
) -> dict[str, Any]:
    """Train one method; returns a summary. ``source`` overrides ``settings.data``.

    Raises:
        DataError: no usable data, or fewer images than one global batch.
        ValueError: inconsistent settings (or a resume with different ones).
        Preempted: SIGTERM arrived; the checkpoint was saved first.
    """
    with Terminations() as terminations:
        return _train(settings, source, terminations)


def _train(
    settings: TrainSettings, source: ImageSource | None, terminations: Terminations
) -> dict[str, Any]:
    """Prepare (data, model, progress), loop, and summarise."""
    group = join(settings.device)
    source = source if source is not None else open_source(settings)
    n = len(source)
    steps_per_epoch = check_batches(settings, n, group.world)
    schedule = Schedule.of(settings, steps_per_epoch, group.world)
    parts, transform = build_parts(settings, n, group.device)
    dataset = build_dataset(settings, source, transform, group.device)
    data_path = "tensor" if isinstance(dataset, DecodedDataset) else "files"
    checkpoint = Path(settings.out) / CHECKPOINT
    state = start_or_resume(settings, parts, checkpoint, n, group)
    if group.rank == 0:
        run = {"world": group.world, "peak_lr": schedule.peak, "data_path": data_path}
        write_run_settings(Path(settings.out), settings, source, run)
    loop = TrainingLoop(
        settings, parts, dataset, n, group, state, schedule, checkpoint, terminations
    )
    loop.run()
    if loop.stopped and int(state["global_step"]) == 0:
        loop.save()  # stopped before the first step: still leave a checkpoint
    if any_process(terminations.received, group.device):  # all wait for rank 0's save
        raise Preempted(
            f"stopped by SIGTERM at step {int(state['global_step'])}, checkpoint "
            f"saved to {checkpoint}; continue with --resume"
        )
    return summary(settings, source, loop, steps_per_epoch, data_path)


def summary(
    settings: TrainSettings,
    source: ImageSource,
    loop: TrainingLoop,
    steps_per_epoch: int,
    data_path: str,
) -> dict[str, Any]:
    """What ``train`` returns: how far the run got, how fast, its last loss."""
    state, world = loop.state, loop.group.world
    images_seen = int(state["global_step"]) * settings.batch_size * world
    return {
        "method": settings.method,
        "data_path": data_path,
        "n_data": len(source),
        "skipped": [{"path": s.name, "error": s.reason} for s in source.skipped],
        "steps": int(state["global_step"]),
        "epochs": int(state["epoch"]) + int(state["step_in_epoch"]) / steps_per_epoch,
        "images_seen": images_seen,
        "elapsed_s": float(state["elapsed"]),
        "images_per_s": images_seen / max(float(state["elapsed"]), 1e-9),
        "last_loss": loop.last_loss,
        "checkpoint": str(loop.checkpoint),
    }
