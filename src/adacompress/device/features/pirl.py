"""State features from a PIRL encoder (where AdaCompress and PIRL meet).

The encoder ``phi`` that ``pirl train`` learned without labels, frozen: its pooled
output (the representation before the heads ``f`` and ``g``), L2-normalised. The
file is what ``pirl export`` writes (see :func:`pirl.evaluate.export_encoder`):
``format``, ``arch``, ``width``, ``cifar_stem``, ``image_size``, ``method``, ``steps``
and the encoder's ``state_dict``; a training checkpoint works too. Images are prepared
as ``pirl eval`` prepares them (:class:`pirl.transforms.EvalView`: shorter side resized
and centre-cropped to the training image size, ImageNet mean and std).

The same encoder randomly initialised is the control: what do the architecture and
the preprocessing alone give the agent?
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from adacompress.core.datasets import file_digest
from adacompress.core.engine import OnnxGraph, cached_graph, engine, engine_tag
from basekit.images import to_rgb
from pirl import EvalView, TrainSettings, load_encoder, resnet

DEFAULT_IMAGE_SIZE = 32
"""Input side when the file does not record one (``pirl eval``'s default too)."""


RANDOM_ENCODER = ("resnet18", 32, True)
"""Architecture, width and CIFAR stem of the bare ``random`` extractor."""


class PirlFeatures:
    """A frozen PIRL encoder on the uncompressed image.

    Args:
        encoder: maps (batch, 3, s, s) to (batch, encoder.out_dim); put in eval mode.
        name: the cache key of these features; must differ between encoders.
        image_size: side ``s`` of the square input.
        batch_size: images per forward pass.

    Shape: ``extract`` returns (len(images), encoder.out_dim), rows of unit length.

    Examples:
        >>> extractor = PirlFeatures.from_file("out/pirl/encoder.pt")
        >>> extractor.name, extractor.dim
        ('pirl:encoder-3f2a9c01de', 256)
        >>> PirlFeatures.from_random().extract([image]).shape
        (1, 256)
    """

    def __init__(
        self,
        encoder: nn.Module,
        *,
        name: str,
        image_size: int = DEFAULT_IMAGE_SIZE,
        batch_size: int = 16,
        identity: dict[str, object] | None = None,
    ) -> None:
        self.encoder = encoder.eval().requires_grad_(False)
        self.name = name
        self.cache_name = name + engine_tag()
        self.dim = int(encoder.out_dim)  # type: ignore[arg-type]
        self.image_size = image_size
        self.batch_size = batch_size
        self.view = EvalView(image_size)
        self._run = None
        if engine() == "onnx":
            self._run = self._onnx({"name": name, **(identity or {})})

    def _onnx(self, identity: dict[str, object]) -> OnnxGraph:
        """The encoder and the normalisation as one graph, cached by ``identity``
        (how the encoder was made), its weights and the input size."""
        encoder, size = self.encoder, self.image_size
        digest = hashlib.sha256()
        for key, tensor in sorted(encoder.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().contiguous().numpy().tobytes())
        identity = {**identity, "weights": digest.hexdigest(), "size": size}

        class Normalised(nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return F.normalize(encoder(x), dim=1)

        example = np.zeros((1, 3, size, size), dtype=np.float32)
        return cached_graph("pirl", identity, lambda: (Normalised(), (example,)))

    @classmethod
    def from_file(cls, path: str | Path) -> PirlFeatures:
        """The encoder exported by ``pirl export`` (or in a training checkpoint).

        Named ``pirl:<file stem>-<first 10 hex of the file's SHA-256>``, so features
        cached under the name never mix two encoders.

        Raises:
            ValueError: no such file, or not a pirl encoder (one line).
        """
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"pirl encoder not found: {path}")
        encoder, meta = load_encoder(path)
        digest = file_digest(path)
        return cls(
            encoder,
            name=f"pirl:{path.stem}-{digest[:10]}",
            image_size=int(meta.get("image_size") or DEFAULT_IMAGE_SIZE),
            identity={"encoder": digest},
        )

    @classmethod
    def from_random(
        cls, seed: int = 0, *, like: str | Path | None = None
    ) -> PirlFeatures:
        """An untrained encoder from ``seed``: ResNet-18 width 32 with a CIFAR stem
        at ``pirl train``'s default input size (the ``random`` control as it has
        always been), or that of the encoder file ``like`` (same input size too) --
        the control for that encoder. The global random state is left as it was.
        """
        arch, width, stem, size = (*RANDOM_ENCODER, TrainSettings().image_size)
        name = "random" if seed == 0 else f"random@{seed}"
        if like is not None:
            like = Path(like)
            if not like.is_file():
                raise ValueError(f"pirl encoder not found: {like}")
            _, meta = load_encoder(like)
            arch, width, stem = meta["arch"], meta["width"], meta["cifar_stem"]
            size = int(meta.get("image_size") or DEFAULT_IMAGE_SIZE)
            name += f":{like.stem}-{file_digest(like)[:10]}"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = resnet(arch, width=width, cifar_stem=stem)
        made_of = {
            "seed": seed,
            "arch": arch,
            "width": width,
            "stem": stem,
            "torch": torch.__version__,
        }
        return cls(encoder, name=name, image_size=size, identity=made_of)

    def extract(self, images: list[Image.Image]) -> np.ndarray:
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            batch = torch.stack(
                [self.view(im if im.mode == "RGB" else to_rgb(im)) for im in chunk]
            )
            if self._run is not None:
                rows = self._run(batch.numpy())
            else:
                with torch.inference_mode():
                    rows = F.normalize(self.encoder(batch), dim=1).numpy()
            out[start : start + len(chunk)] = rows
        return out
