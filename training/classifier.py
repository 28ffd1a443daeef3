"""An emotion classifier of 2-bar segments, trained on real training clips only.

It is the evaluation's listener: it is independent of the model under test (its own weights, a
GRU over raw frames rather than the training critic's hand-made statistics) and is trained with
random transpositions so that it hears intervals rather than absolute keys.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .features import transpose_segments
from .model import FRAME_SIZE, N_EMOTIONS


class SegmentClassifier(nn.Module):
    def __init__(self, hidden: int = 96) -> None:
        super().__init__()
        self.proj = nn.Linear(FRAME_SIZE, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(4 * hidden, N_EMOTIONS)

    def forward(self, roll: torch.Tensor) -> torch.Tensor:
        seq, _ = self.gru(torch.relu(self.proj(roll)))
        return self.out(torch.cat([seq.mean(dim=1), seq.max(dim=1).values], dim=-1))


def train_classifier(roll: np.ndarray, label: np.ndarray, steps: int = 1500, batch: int = 128,
                     seed: int = 0, log=print) -> SegmentClassifier:
    """Fit on float rolls ``[N, T, 264]`` with labels 0..3 (balanced by class weights)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = SegmentClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    counts = np.bincount(label, minlength=N_EMOTIONS).astype(np.float32)
    weight = torch.tensor(counts.sum() / np.maximum(counts, 1) / N_EMOTIONS)
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    model.train()
    for step in range(steps):
        rows = rng.integers(0, len(roll), batch)
        x = transpose_segments(roll[rows], rng.integers(-5, 7, batch))
        loss = loss_fn(model(torch.from_numpy(x)), torch.from_numpy(label[rows]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 500 == 0:
            log(f"classifier step {step + 1}: loss {loss.item():.3f}")
    return model.eval()


@torch.no_grad()
def predict_proba(model: SegmentClassifier, roll: np.ndarray, batch: int = 512) -> np.ndarray:
    """``[N, 4]`` class probabilities."""
    out = [torch.softmax(model(torch.from_numpy(roll[i:i + batch].astype(np.float32))), -1)
           for i in range(0, len(roll), batch)]
    return torch.cat(out).numpy()
