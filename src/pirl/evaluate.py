"""Frozen-feature evaluation: kNN and a linear probe (docs/formulas.md, "Evaluation").

The encoder is in eval mode (BatchNorm uses its running statistics) and runs once
over the labelled train and test images; its pooled features are then classified.
The images are read from the decoded uint8 cache (:mod:`pirl.tensor_data`) or from
the files; both give the same view (the centre square at ``image_size``).

- kNN: the usual InstDisc/lightly setting -- cosine similarity, the ``k = 200``
  nearest training images vote with weight ``exp(s / t)``, ``t = 0.1``.
- Linear probe: a linear classifier on the standardised frozen features (no
  augmentation), Adam with a cosine schedule.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from basekit.atomic import atomic_torch_save
from basekit.safe_load import load_tensors
from pirl.batch_transforms import to_float
from pirl.data import DataError, ImageDataset, ImageSource
from pirl.distributed import pick_device
from pirl.resnet import resnet
from pirl.tensor_data import DEFAULT_MEMORY_LIMIT_GB, DecodedImages, takes_tensor_path
from pirl.transforms import EvalView, normalize

ENCODER_FORMAT = "pirl-encoder-v1"


@dataclass
class EvalSettings:
    """Settings of ``pirl eval``."""

    checkpoint: str | None = None
    """training checkpoint or exported encoder; without it: a random encoder"""
    data: str = ""
    """labelled images (class subfolders): folder or .zip"""
    train_under: str = "train"
    """sub-folder of --data with the images the classifiers are fitted on"""
    test_under: str = "test"
    """sub-folder of --data with the images they are scored on"""
    arch: str = "resnet10"
    """random encoder only: architecture"""
    width: int = 16
    """random encoder only: first-stage channels"""
    cifar_stem: bool = True
    """random encoder only: CIFAR stem"""
    image_size: int | None = None
    """input side in pixels (default: the encoder's training image size, else 32)"""
    k: int = 200
    """kNN neighbours"""
    t: float = 0.1
    """kNN temperature"""
    linear_epochs: int = 100
    """linear probe epochs (0 = skip the probe)"""
    linear_lr: float = 1e-3
    """linear probe peak learning rate (Adam)"""
    batch_size: int = 256
    """images per forward pass"""
    device: str = "auto"
    """where the encoder runs: auto | cpu | cuda"""
    workers: int = 1
    """data-loading worker processes (files path)"""
    data_path: str = "auto"
    """tensor: read the images from the decoded uint8 cache | files: decode every
    image | auto: tensor when the decoded images fit in --memory-limit-gb"""
    memory_limit_gb: float = DEFAULT_MEMORY_LIMIT_GB
    """auto: the largest decoded dataset that takes the tensor path"""
    cache_dir: str | None = None
    """folder of dataset indexes and decoded datasets (default: $PIRL_CACHE,
    else the user's cache folder)"""
    limit_train: int | None = None
    """use a seeded random subset of this many training images"""
    limit_test: int | None = None
    """use a seeded random subset of this many test images"""
    seed: int = 0
    """seed of the random encoder, the subsets and the probe"""
    json: str | None = None
    """write the result here as JSON"""
    progress: bool = False
    """show progress bars"""


Log = Callable[[str], None]
"""Where progress lines go (one line each)."""


def load_encoder(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The encoder of a training checkpoint or of an exported file, plus its meta.

    The encoder is in eval mode (BatchNorm uses its running statistics), ready to
    extract features; call ``.train()`` to fine-tune it. Only tensors and plain
    data are read (``weights_only``): a crafted file is refused, never executed.

    Examples:
        >>> encoder, meta = load_encoder("out/pirl/checkpoint.pt")
        >>> features = extract_features(encoder, ImageSource("photos"),
        ...                             image_size=meta["image_size"])  # (n, dim)

    Raises:
        ValueError: the file is neither, or holds more than plain data (one line).
    """
    saved = load_tensors(path, what="pirl checkpoint or encoder")
    if not isinstance(saved, dict):
        raise ValueError(f"{path} is not a pirl checkpoint or encoder")
    if saved.get("format") == ENCODER_FORMAT:
        meta = {k: v for k, v in saved.items() if k != "state_dict"}
        state = saved["state_dict"]
    elif "model" in saved and "settings" in saved:
        s = saved["settings"]
        meta = {
            "format": ENCODER_FORMAT,
            "arch": s["arch"],
            "width": s["width"],
            "cifar_stem": s["cifar_stem"],
            "image_size": s["image_size"],
            "method": s["method"],
            "steps": saved["state"]["global_step"],
        }
        state = {
            k.removeprefix("encoder."): v
            for k, v in saved["model"].items()
            if k.startswith("encoder.")
        }
    else:
        raise ValueError(f"{path} is not a pirl checkpoint or encoder")
    encoder = resnet(meta["arch"], width=meta["width"], cifar_stem=meta["cifar_stem"])
    encoder.load_state_dict(state)
    return encoder.eval(), meta


def export_encoder(checkpoint: str | Path, out: str | Path) -> dict[str, Any]:
    """Write the encoder of ``checkpoint`` alone (weights + how to rebuild it)."""
    encoder, meta = load_encoder(checkpoint)
    atomic_torch_save({**meta, "state_dict": encoder.state_dict()}, Path(out))
    return meta


@torch.no_grad()
def extract_features(
    encoder: nn.Module,
    source: ImageSource,
    *,
    image_size: int = 32,
    batch_size: int = 256,
    workers: int = 0,
    device: torch.device | str = "cpu",
    data_path: str = "auto",
    memory_limit_gb: float = DEFAULT_MEMORY_LIMIT_GB,
    cache_dir: str | Path | None = None,
    log: Log | None = None,
) -> torch.Tensor:
    """Pooled encoder features of every image, encoder in eval mode (its mode is
    given back), on ``device``; ``log`` gets a progress line now and then.

    Shape: returns (len(source), encoder.out_dim).
    """
    batches: Iterable[torch.Tensor]
    n = len(source)
    if takes_tensor_path(data_path, n, image_size, memory_limit_gb):
        # decoding stores the centre square at image_size: EvalView's own view
        images = DecodedImages.open(source, side=image_size, cache_dir=cache_dir)
        batches = (
            normalize(to_float(images.batch(range(lo, min(lo + batch_size, n)))))
            for lo in range(0, n, batch_size)
        )
    else:
        loader = DataLoader(
            ImageDataset(source, EvalView(image_size)),
            batch_size=batch_size,
            num_workers=workers,
        )
        batches = (x for x, _ in loader)
    was_training = encoder.training
    encoder.eval()
    parts, done, started, last = [], 0, time.monotonic(), time.monotonic()
    for x in batches:
        parts.append(encoder(x.to(device)).float().cpu())
        done += len(x)
        if log is not None and (time.monotonic() - last > 10 or done == n):
            last = time.monotonic()
            rate = done / max(last - started, 1e-9)
            log(f"features: {done}/{n} images ({rate:.0f} images/s)")
    encoder.train(was_training)
    return torch.cat(parts)


def knn_top1(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    k: int = 200,
    t: float = 0.1,
    chunk: int = 1024,
) -> float:
    """Weighted kNN top-1 accuracy (cosine similarity, weights ``exp(s / t)``).

    Shape: features (n, d), labels (n,).
    """
    n_classes = max(int(train_labels.max()), int(test_labels.max())) + 1
    train = F.normalize(train_features, dim=1)
    test = F.normalize(test_features, dim=1)
    k = min(k, len(train))
    correct = 0
    for lo in range(0, len(test), chunk):
        similarity = test[lo : lo + chunk] @ train.T  # (chunk, n_train)
        top_sim, top_idx = similarity.topk(k, dim=1)
        weights = (top_sim / t).exp()
        votes = torch.zeros(len(top_idx), n_classes)
        votes.scatter_add_(1, train_labels[top_idx], weights)
        correct += int((votes.argmax(1) == test_labels[lo : lo + chunk]).sum())
    return correct / len(test)


def linear_probe(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    epochs: int = 100,
    lr: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
) -> float:
    """Top-1 accuracy of a linear classifier trained on frozen, standardised features.

    Shape: features (n, d), labels (n,).
    """
    n_classes = max(int(train_labels.max()), int(test_labels.max())) + 1
    mean, std = train_features.mean(0), train_features.std(0) + 1e-6
    x_train, x_test = (train_features - mean) / std, (test_features - mean) / std
    generator = torch.Generator().manual_seed(seed)
    classifier = nn.Linear(x_train.shape[1], n_classes)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        classifier.reset_parameters()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr, weight_decay=1e-5)
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    total, step = epochs * steps_per_epoch, 0
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=generator)
        for lo in range(0, len(order), batch_size):
            batch = order[lo : lo + batch_size]
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = F.cross_entropy(classifier(x_train[batch]), train_labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
    with torch.no_grad():
        predicted = classifier(x_test).argmax(1)
    return float((predicted == test_labels).float().mean())


def labelled(source: ImageSource) -> torch.Tensor:
    if source.labels is None:
        raise DataError(
            f"{source.path}: evaluation needs labels (one sub-folder per class)"
        )
    return torch.tensor(source.labels)


def evaluate_encoder(
    encoder: nn.Module,
    train: ImageSource,
    test: ImageSource,
    *,
    image_size: int = 32,
    k: int = 200,
    t: float = 0.1,
    linear_epochs: int = 100,
    linear_lr: float = 1e-3,
    batch_size: int = 256,
    workers: int = 0,
    seed: int = 0,
    data_path: str = "auto",
    memory_limit_gb: float = DEFAULT_MEMORY_LIMIT_GB,
    cache_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
    log: Log | None = None,
) -> dict[str, Any]:
    """kNN and linear-probe top-1 of a frozen encoder, as fractions in [0, 1].

    The encoder runs on ``device``; the classifiers run on the CPU."""
    if train.classes != test.classes:
        raise DataError("train and test images have different classes")
    y_train, y_test = labelled(train), labelled(test)
    say = log or (lambda line: None)
    features_of = partial(
        extract_features,
        encoder,
        image_size=image_size,
        batch_size=batch_size,
        workers=workers,
        device=device,
        data_path=data_path,
        memory_limit_gb=memory_limit_gb,
        cache_dir=cache_dir,
        log=log,
    )
    say(f"train: {len(train)} images")
    x_train = features_of(train)
    say(f"test: {len(test)} images")
    x_test = features_of(test)
    scores = score_features(
        x_train,
        y_train,
        x_test,
        y_test,
        k=k,
        t=t,
        linear_epochs=linear_epochs,
        linear_lr=linear_lr,
        seed=seed,
        say=say,
    )
    return {
        "n_train": len(train),
        "n_test": len(test),
        "feature_dim": int(x_train.shape[1]),
        **scores,
    }


def score_features(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    k: int,
    t: float,
    linear_epochs: int,
    linear_lr: float,
    seed: int,
    say: Log,
) -> dict[str, float | None]:
    """kNN top-1 and linear-probe top-1 (None when ``linear_epochs`` is 0) of
    classifiers fitted on the train features and scored on the test features."""
    say(f"kNN (k = {k})")
    scores: dict[str, float | None] = {
        "knn_top1": knn_top1(x_train, y_train, x_test, y_test, k=k, t=t),
        "linear_top1": None,
    }
    if linear_epochs > 0:
        say(f"linear probe ({linear_epochs} epochs)")
        scores["linear_top1"] = linear_probe(
            x_train,
            y_train,
            x_test,
            y_test,
            epochs=linear_epochs,
            lr=linear_lr,
            seed=seed,
        )
    return scores


def evaluate(settings: EvalSettings, *, log: Log | None = None) -> dict[str, Any]:
    """``pirl eval``: load (or randomly initialise) the encoder and score it;
    ``log`` gets progress lines."""
    device = pick_device(settings.device)
    if settings.checkpoint:
        encoder, meta = load_encoder(settings.checkpoint)
    else:
        torch.manual_seed(settings.seed)
        encoder = resnet(
            settings.arch, width=settings.width, cifar_stem=settings.cifar_stem
        )
        meta = {
            "arch": settings.arch,
            "width": settings.width,
            "cifar_stem": settings.cifar_stem,
            "method": "random",
        }
    if not settings.data:
        raise DataError("no evaluation data given (--data)")
    train = ImageSource(
        settings.data,
        under=settings.train_under,
        limit=settings.limit_train,
        seed=settings.seed,
        cache_dir=settings.cache_dir,
    )
    test = ImageSource(
        settings.data,
        under=settings.test_under,
        limit=settings.limit_test,
        seed=settings.seed,
        cache_dir=settings.cache_dir,
    )
    image_size = settings.image_size or int(meta.get("image_size", 32))
    result = evaluate_encoder(
        encoder.to(device),
        train,
        test,
        image_size=image_size,
        k=settings.k,
        t=settings.t,
        linear_epochs=settings.linear_epochs,
        linear_lr=settings.linear_lr,
        batch_size=settings.batch_size,
        workers=settings.workers,
        seed=settings.seed,
        data_path=settings.data_path,
        memory_limit_gb=settings.memory_limit_gb,
        cache_dir=settings.cache_dir,
        device=device,
        log=log,
    )
    skipped = [
        {"path": s.name, "error": s.reason} for s in train.skipped + test.skipped
    ]
    return {"encoder": meta, **result, "skipped": skipped}
