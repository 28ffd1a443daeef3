"""Training losses: reconstruction, KL with free bits, and two emotion terms for valence.

Emotion terms (training only; nothing here is exported):
- ``adversary``: a classifier tries to read the emotion from the posterior mean; the encoder
  gets the reversed gradient, pushing emotion out of z so the decoder must take it from the
  label (at generation time z comes from the prior and carries no emotion).
- ``critic``: a classifier of transposition-invariant statistics (interval-class profile of the
  sounding pitches, density, register, loudness) learns the emotion on real segments; the same
  statistics of the decoder's output must be classified as the conditioning emotion, so the
  decoder has to express it (mode, register), not only arousal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .model import CVAE, N_EMOTIONS, N_KEYS, drop_notes, start_from_silence

N_STATS = 12 + 4 + 5

# Krumhansl-Kessler key profiles (C major, C minor), pitch class 0 = C.
_KK_MAJOR = [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]
_KK_MINOR = [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]


def _key_templates() -> torch.Tensor:
    """``[24, 12]`` centred unit-norm profiles: 12 major keys, then 12 minor keys."""
    rows = [torch.roll(torch.tensor(p), r) for p in (_KK_MAJOR, _KK_MINOR) for r in range(12)]
    table = torch.stack(rows)
    table = table - table.mean(dim=1, keepdim=True)
    return table / table.norm(dim=1, keepdim=True)


_KEYS = _key_templates()


def mode_features(pc: torch.Tensor) -> torch.Tensor:
    """``[B, 4]`` transposition-invariant but mirror-sensitive (major vs minor) features of a
    pitch-class distribution ``pc [B, 12]``: best major-key and best minor-key correlation (soft
    maximum over the 12 tonics) and the mass of major and of minor triads over all roots."""
    centred = pc - pc.mean(dim=1, keepdim=True)
    corr = (centred / (centred.norm(dim=1, keepdim=True) + 1e-6)) @ _KEYS.to(pc).T  # [B, 24]
    soft_max = lambda c: torch.logsumexp(c * 10.0, dim=1) / 10.0  # noqa: E731
    shifted = lambda k: torch.roll(pc, -k, dims=1)  # noqa: E731  shifted(k)[r] = pc[r + k]
    major = (pc * shifted(4) * shifted(7)).sum(dim=1)
    minor = (pc * shifted(3) * shifted(7)).sum(dim=1)
    return torch.stack([soft_max(corr[:, :12]), soft_max(corr[:, 12:]), major * 30.0,
                        minor * 30.0], dim=1)


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return -grad


def segment_stats(onset: torch.Tensor, hold: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
    """``[B, N_STATS]`` from (probabilities of) onset/hold/velocity ``[B, T, 88]``.

    Interval-class profile: circular autocorrelation of the 12-bin pitch-class distribution of
    the sounding keys (invariant to transposition, but blind to major vs minor: a minor triad
    is a mirrored major one), plus :func:`mode_features`, which tell major from minor."""
    keys = torch.arange(N_KEYS, device=hold.device, dtype=hold.dtype)
    weight = hold.sum(dim=1)  # [B, 88] steps each key sounds
    pitch_class = (torch.arange(N_KEYS, device=hold.device) + 9) % 12  # key 0 is A (class 9)
    pc = torch.zeros(weight.shape[0], 12, device=hold.device, dtype=hold.dtype)
    pc = pc.index_add(1, pitch_class, weight)
    pc = pc / (pc.sum(dim=1, keepdim=True) + 1e-6)
    profile = torch.stack([(pc * torch.roll(pc, -k, dims=1)).sum(dim=1) for k in range(12)], 1)
    total = weight.sum(dim=1) + 1e-6
    mean_key = (weight * keys).sum(dim=1) / total
    spread = ((weight * (keys - mean_key[:, None]) ** 2).sum(dim=1) / total).sqrt()
    steps = onset.shape[1]
    density = onset.sum(dim=(1, 2)) / steps  # onsets per step
    polyphony = hold.sum(dim=(1, 2)) / steps  # sounding keys per step
    loudness = (onset * velocity).sum(dim=(1, 2)) / (onset.sum(dim=(1, 2)) + 1e-6)
    extra = torch.stack([mean_key / N_KEYS, spread / 24.0, density / 4.0, polyphony / 8.0,
                         loudness], dim=1)
    return torch.cat([profile * 4.0, mode_features(pc), extra], dim=1)


class EmotionHeads(nn.Module):
    def __init__(self, z_dim: int) -> None:
        super().__init__()
        self.adversary = nn.Sequential(nn.Linear(z_dim, 64), nn.ReLU(), nn.Linear(64, N_EMOTIONS))
        self.critic = nn.Sequential(nn.Linear(N_STATS, 64), nn.ReLU(), nn.Linear(64, N_EMOTIONS))


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per latent dimension, averaged over the batch: ``[Z]`` nats."""
    return (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).mean(dim=0)


def _labelled_cross_entropy(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the rows with a label (>= 0); 0 when no row has one."""
    known = label >= 0
    if not bool(known.any()):
        return logits.sum() * 0.0  # keeps the graph (and gradients of zero) for backward
    return F.cross_entropy(logits[known], label[known])


def compute_losses(model: CVAE, heads: EmotionHeads, roll: torch.Tensor, emotion: torch.Tensor,
                   label: torch.Tensor, beta: float, free_bits: float, adv_weight: float,
                   critic_weight: float, input_dropout: float = 0.0,
                   hidden_dropout: float = 0.0, own_frames: float = 0.0,
                   free_run: float = 0.0, silent_start: float = 0.0,
                   missed_notes: float = 0.0) -> dict[str, torch.Tensor]:
    """All loss terms for a batch ``roll [B, T, 264]``; ``total`` is what is minimised.
    ``input_dropout``, ``hidden_dropout``, ``own_frames`` and ``free_run``
    (CVAE.forward_teacher), ``silent_start`` (the decoder's inputs and targets without the
    notes begun before the segment, :func:`model.start_from_silence`; the encoder sees them) and
    ``missed_notes`` (notes begun in the segment taken out of the decoder's inputs and later hold
    targets, :func:`model.drop_notes`) apply in training mode only (validation decodes with every
    true frame and unit)."""
    if not model.training:
        input_dropout = hidden_dropout = own_frames = free_run = silent_start = missed_notes = 0.0
    mu, logvar = model.encode(roll, emotion)
    real_stats = segment_stats(*roll.split(N_KEYS, dim=-1))
    roll = start_from_silence(roll, silent_start)
    inputs, roll = drop_notes(roll, missed_notes)
    onset_t, hold_t, vel_t = roll.split(N_KEYS, dim=-1)
    z = model.reparameterise(mu, logvar) if model.training else mu
    onset_l, hold_l, vel_p = model.forward_teacher(inputs, z, emotion, input_dropout,
                                                   hidden_dropout, own_frames, free_run)
    onset_bce = F.binary_cross_entropy_with_logits(onset_l, onset_t)
    hold_bce = F.binary_cross_entropy_with_logits(hold_l, hold_t)
    vel_mse = ((vel_p - vel_t) ** 2 * onset_t).sum() / onset_t.sum().clamp(min=1.0)
    kl_dims = kl_per_dim(mu, logvar)
    kl_free = torch.clamp(kl_dims, min=free_bits).sum()
    # Onset and hold: summed over a step's 88 keys, averaged over steps. Velocity: the mean
    # squared error over the onsets (not summed per step; docs/training.md, "Losses").
    recon = (onset_bce + hold_bce) * N_KEYS + vel_mse
    adv = _labelled_cross_entropy(heads.adversary(_ReverseGrad.apply(mu)), label)
    fake_stats = segment_stats(torch.sigmoid(onset_l), torch.sigmoid(hold_l), vel_p)
    critic_real = _labelled_cross_entropy(heads.critic(real_stats), label)
    # The critic learns from real segments only; on the decoder's output its weights are frozen
    # so that this term teaches the decoder, never the critic.
    frozen = {name: p.detach() for name, p in heads.critic.named_parameters()}
    critic_fake = _labelled_cross_entropy(
        torch.func.functional_call(heads.critic, frozen, fake_stats), label)
    steps = roll.shape[1]
    total = (recon + beta * kl_free / steps + adv_weight * adv
             + critic_weight * (critic_real + critic_fake))
    return {"total": total, "recon": recon, "onset_bce": onset_bce, "hold_bce": hold_bce,
            "vel_mse": vel_mse, "kl": kl_dims.sum(), "adv_ce": adv, "critic_real": critic_real,
            "critic_fake": critic_fake}
