"""NCE, InfoNCE and the PIRL loss (docs/formulas.md, "NCE" and "PIRL loss").

NCE (docs/formulas.md): with cosine similarity ``s`` and temperature ``tau``,
``h(u, v) = exp(s(u,v)/tau) / (exp(s(u,v)/tau) + N/|D|)`` and the loss of one positive
pair and its ``N`` negatives is ``-log h(m_I, v) - sum_{I'} log(1 - h(m_{I'}, v))``.
Since ``h = sigmoid(s/tau - log Z - log(N/|D|))``, both terms are softplus functions
and are computed that way (no overflow at ``tau = 0.07``).

Normalisation constant ``Z``: the formula is ``Z = 1``. With ``tau = 0.07``,
``exp(s/tau)`` of an unrelated pair (``s`` about 0) is already far above ``N/|D|``,
so every negative gets ``h`` near 1 and the loss is thousands. NPID (Wu et al.,
2018) and VISSL's ``NCELossWithMemory`` divide ``exp(s/tau)`` by ``Z = |D| *
mean(exp(s/tau))`` estimated on the first batch and then kept fixed
(``norm_constant=None``). That first batch sees a bank of random vectors; as the
bank fills with real embeddings the negatives' similarities rise, the fixed ``Z``
falls far short, and the loss climbs again. ``z_momentum=m`` re-estimates ``Z``
every step as a moving average instead, so the negatives' term stays near one.
``norm_constant=1.0`` is the formula's literal form.

Negatives are drawn uniformly from the bank. By default one draw of ``N`` slots is
shared by the whole batch (an image's own slot is masked out of its row): the
similarities are then one ``(batch, dim) x (dim, N)`` product. Drawing ``N`` per image
(VISSL) gathers a ``(batch, N, dim)`` tensor -- 268 MB per step at batch 128, N = 4096
-- and measured 25 images/s instead of hundreds on the 2-core CPU; it stays available
as ``shared_negatives=False``.

InfoNCE (``pirl train``'s default): cross-entropy of the positive among
``[positive, negatives]`` with logits ``s/tau``.

PIRL: ``L = lambda * L(m_I, g(v_{I^t})) + (1 - lambda) * L(m_I, f(v_I))``, lambda =
0.5; lambda = 0 is NPID (Wu et al., 2018) and needs no pretext view at all.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from pirl.memory_bank import MemoryBank

LOSSES = ("nce", "infonce")


def nce_loss(
    positive: torch.Tensor,
    negatives: torch.Tensor,
    *,
    temperature: float = 0.07,
    n_data: int,
    log_z: float | torch.Tensor = 0.0,
) -> torch.Tensor:
    """Mean NCE loss over the batch (docs/formulas.md, "NCE").

    Args:
        positive: cosine similarities ``s(m_I, v)``. Shape: (batch,).
        negatives: cosine similarities ``s(m_{I'}, v)``. Shape: (batch, N).
        temperature: ``tau``.
        n_data: ``|D|``, the number of training images.
        log_z: log of the normalisation constant ``Z`` (0: the literal form).
    """
    log_noise = math.log(negatives.shape[1] / n_data) + log_z  # log(Z * N / |D|)
    z_pos = positive / temperature - log_noise
    z_neg = negatives / temperature - log_noise
    # -log h = softplus(-z); -log(1 - h) = softplus(z)
    return (F.softplus(-z_pos) + F.softplus(z_neg).sum(dim=1)).mean()


def info_nce_loss(
    positive: torch.Tensor, negatives: torch.Tensor, *, temperature: float = 0.07
) -> torch.Tensor:
    """Mean InfoNCE loss. Shape: positive (batch,), negatives (batch, N)."""
    logits = torch.cat([positive[:, None], negatives], dim=1) / temperature
    target = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target)


class PIRLLoss(nn.Module):
    """PIRL loss with its memory bank of negatives (docs/formulas.md, "PIRL loss").

    Args:
        n_data: training images ``|D|`` (one bank slot each).
        dim: embedding size.
        lam: weight ``lambda`` of the pretext term; 0 gives NPID.
        temperature: ``tau``.
        n_negatives: negatives per image, drawn uniformly from the bank.
        loss: ``"infonce"`` (the default, as ``pirl train``'s: it learns at any
            budget) or ``"nce"`` (the paper's, with ``Z`` below).
        momentum: memory bank momentum.
        seed: seed of the bank (initial entries and negative sampling).
        norm_constant: NCE's ``Z``; None estimates it on the first batch (NPID,
            VISSL), 1.0 is the literal formula.
        z_momentum: NCE: re-estimate ``Z`` every step (from the image term's
            negatives) as a moving average with this momentum; None keeps it.
        shared_negatives: one draw of negatives for the whole batch (default) or
            one per image.

    Examples:
        >>> criterion = PIRLLoss(n_data=50_000, n_negatives=4096)  # InfoNCE
        >>> loss = criterion(f, g, indices)  # f, g: (batch, 128) unit vectors
        >>> loss.backward(); criterion.update(indices, f)
    """

    def __init__(
        self,
        n_data: int,
        *,
        dim: int = 128,
        lam: float = 0.5,
        temperature: float = 0.07,
        n_negatives: int = 4096,
        loss: str = "infonce",
        momentum: float = 0.5,
        seed: int = 0,
        norm_constant: float | None = None,
        z_momentum: float | None = None,
        shared_negatives: bool = True,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lambda must be in [0, 1], got {lam}")
        self.memory_bank = MemoryBank(n_data, dim, momentum=momentum, seed=seed)
        self.lam, self.temperature = lam, temperature
        self.n_negatives, self.loss, self.n_data = n_negatives, loss, n_data
        self.shared_negatives = shared_negatives
        if z_momentum is not None and not 0.0 <= z_momentum < 1.0:
            raise ValueError(f"z_momentum must be in [0, 1), got {z_momentum}")
        self.z_momentum = z_momentum
        log_z = math.nan if norm_constant is None else math.log(norm_constant)
        self.log_z: torch.Tensor
        self.register_buffer("log_z", torch.tensor(log_z, dtype=torch.float64))

    @torch.no_grad()
    def estimate_log_z(self, negative: torch.Tensor) -> None:
        """``log Z = log(|D| * mean exp(s/tau))`` over this batch's negatives: set
        the first time, then (with ``z_momentum``) mixed into the running ``Z``.

        Averaged over processes so that every process uses the same ``Z``.
        """
        finite = negative[torch.isfinite(negative)].double()
        mean = (finite / self.temperature).exp().mean()
        if dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(mean)
            mean /= dist.get_world_size()
        batch_z = mean * self.n_data
        if torch.isnan(self.log_z) or self.z_momentum is None:
            self.log_z.fill_(float(torch.log(batch_z)))
        else:
            m = self.z_momentum
            z = m * self.log_z.exp() + (1 - m) * batch_z.to(self.log_z)
            self.log_z.fill_(float(torch.log(z)))

    def contrast(
        self,
        memory: torch.Tensor,
        negatives: torch.Tensor,
        v: torch.Tensor,
        own: torch.Tensor | None = None,
        *,
        estimate: bool = False,
    ) -> torch.Tensor:
        """``L(m_I, v)`` with the given negatives.

        Shape: memory (batch, dim); negatives (batch, N, dim) per image or (N, dim)
        shared, with ``own`` (batch, N) marking each image's own slot; v (batch, dim).
        """
        positive = (memory * v).sum(dim=1)
        if negatives.ndim == 2:
            negative = v @ negatives.T
        else:
            negative = torch.einsum("bnd,bd->bn", negatives, v)
        if own is not None:  # I' != I: the own slot contributes nothing
            negative = negative.masked_fill(own, -math.inf)
        if self.loss == "nce":
            running = estimate and self.z_momentum is not None and self.training
            if torch.isnan(self.log_z) or running:
                self.estimate_log_z(negative.detach())
            return nce_loss(
                positive,
                negative,
                temperature=self.temperature,
                n_data=self.n_data,
                log_z=float(self.log_z),
            )
        return info_nce_loss(positive, negative, temperature=self.temperature)

    def forward(
        self,
        f: torch.Tensor,
        g: torch.Tensor | None,
        indices: torch.Tensor,
        *,
        rank: int = 0,
        world: int = 1,
    ) -> torch.Tensor:
        """``lambda * L(m_I, g) + (1 - lambda) * L(m_I, f)``, mean over the batch.

        Both terms use the same negatives. Shape: f (batch, dim), g (k, dim) for the
        first ``k <= batch`` images, both L2-normalised; indices (batch,). ``g`` may be
        None when lambda is 0.

        Always float32 and outside autocast, whatever the caller runs under: a
        bfloat16 logit ``s/tau`` keeps about two significant digits, too few for
        the exp and log that compare each negative with the positive.
        """
        with torch.autocast(f.device.type, enabled=False):
            return self._loss(
                f.float(), None if g is None else g.float(), indices, rank, world
            )

    def _loss(
        self,
        f: torch.Tensor,
        g: torch.Tensor | None,
        indices: torch.Tensor,
        rank: int,
        world: int,
    ) -> torch.Tensor:
        bank = self.memory_bank
        memory = bank(indices).to(f.dtype)
        own = None
        if self.shared_negatives:
            ids = bank.sample_shared(self.n_negatives).to(indices.device)
            own = ids[None, :] == indices[:, None]
        else:
            ids = bank.sample_negatives(
                indices, self.n_negatives, rank=rank, world=world
            )
        negatives = bank(ids).to(f.dtype)
        loss = (1 - self.lam) * self.contrast(memory, negatives, f, own, estimate=True)
        if self.lam > 0:
            if g is None:
                raise ValueError("lambda > 0 needs the pretext embedding g")
            k = len(g)
            if negatives.ndim == 3:
                negatives = negatives[:k]
            pretext_own = None if own is None else own[:k]
            loss = loss + self.lam * self.contrast(
                memory[:k], negatives, g, pretext_own
            )
        return loss

    @torch.no_grad()
    def update(self, indices: torch.Tensor, f: torch.Tensor) -> None:
        """Momentum update of the bank from ``f(v_I)``, after the loss."""
        self.memory_bank.update(indices, f.float())
