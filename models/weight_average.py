"""An exponential moving average of the trained weights (Polyak averaging), for evaluation.

Training keeps updating the network; the average trails it, smoothing the noise of the
last steps, and is what gets evaluated on dev, kept and shipped (`optim.ema_decay`).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class WeightAverage:
    """Per-step average of `net`'s trainable parameters with decay `decay`."""

    def __init__(self, net: Any, decay: float) -> None:
        import torch

        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1); got {decay}")
        self.decay = decay
        self._params = {name: p for name, p in net.named_parameters() if p.requires_grad}
        with torch.no_grad():
            self.average = {name: p.detach().clone() for name, p in self._params.items()}

    def update(self, step: int) -> None:
        """Fold in the weights after optimiser step `step` (1-based). Early steps use a
        smaller decay, (1 + step) / (10 + step), so the start does not weigh for long."""
        import torch

        decay = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for name, param in self._params.items():
                self.average[name].mul_(decay).add_(param.detach(), alpha=1 - decay)

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """Inside the block the network holds the average; afterwards its trained weights again."""
        import torch

        with torch.no_grad():
            trained = {name: p.detach().clone() for name, p in self._params.items()}
            for name, param in self._params.items():
                param.copy_(self.average[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, param in self._params.items():
                    param.copy_(trained[name])
