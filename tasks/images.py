"""Image classification with an ODE block (the GQ paper's MNIST / CIFAR-10 / SVHN experiment).

Encoder: BatchNorm, ReLU, 3x3 conv to `state_channels` (10), 2x2 max-pool, ReLU, 3x3 conv (10 -> 10). ODE block on
[0, 1]: three 3x3 convolutions 10 -> W -> W -> 10 with Softplus (padding 1), W = `hidden_channels`. Decoder: an MLP
(hidden 50, ReLU) to 10 classes. Cross-entropy; metric test accuracy (%). Images smaller than 16 pixels (the 8x8
digits stand-in) get padding 1 in the encoder convolutions, or nothing would be left of them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tasks.base import Solver, Task
from tasks.data.images import load_images
from tasks.models.conv import ConvField


class ImageODE(Task):
    metric = "test_accuracy"
    lower_is_better = False

    def __init__(
        self, seed: int, device: torch.device, dtype: torch.dtype,
        data: str = "auto",
        data_dir: str = "data",
        download: bool = True,
        hidden_channels: int = 50,
        state_channels: int = 10,
        batch_size: int = 32,
        eval_batch_size: int = 500,
        train_size: int = 0,
        test_size: int = 0,
        check_size: int = 8,
    ) -> None:
        super().__init__(seed, device, dtype)
        images = load_images(data, data_dir, download)
        self.dataset = images.description
        limit = lambda n, size: n if size <= 0 else min(n, size)
        n_train, n_test = limit(len(images.train_x), train_size), limit(len(images.test_x), test_size)
        self.train_x = images.scaled(images.train_x[:n_train]).to(device, dtype)
        self.test_x = images.scaled(images.test_x[:n_test]).to(device, dtype)
        self.train_y, self.test_y = images.train_y[:n_train].to(device), images.test_y[:n_test].to(device)
        self.batch_size, self.eval_batch_size, self.check_size = batch_size, eval_batch_size, check_size
        channels, size = self.train_x.shape[1], self.train_x.shape[-1]
        pad = 1 if size < 16 else 0
        self.encoder = nn.Sequential(
            nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, state_channels, 3, padding=pad),
            nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(state_channels, state_channels, 3, padding=pad),
        ).to(device, dtype)
        self.field = ConvField(state_channels, hidden_channels).to(device, dtype)
        with torch.no_grad():
            features = self.encoder(self.train_x[:2]).flatten(1).shape[1]
        self.decoder = nn.Sequential(nn.Linear(features, 50), nn.ReLU(), nn.Linear(50, 10)).to(device, dtype)
        self.model = nn.ModuleDict({"encoder": self.encoder, "field": self.field, "decoder": self.decoder})
        self.ts = torch.tensor([0.0, 1.0], device=device, dtype=dtype)

    def logits(self, x: torch.Tensor, solver: Solver) -> torch.Tensor:
        state = solver.solve(self.field, self.encoder(x), self.ts)[-1]
        return self.decoder(state.flatten(1))

    def train_loss(self, step: int, solver: Solver) -> torch.Tensor:
        index = self.epoch_batch(len(self.train_x), self.batch_size, step)
        return F.cross_entropy(self.logits(self.train_x[index], solver), self.train_y[index])

    @torch.no_grad()
    def evaluate(self, solver: Solver) -> dict[str, float]:
        correct, loss = 0, 0.0
        for x, y in zip(self.test_x.split(self.eval_batch_size), self.test_y.split(self.eval_batch_size)):
            logits = self.logits(x, solver)
            correct += (logits.argmax(1) == y).sum().item()
            loss += F.cross_entropy(logits, y, reduction="sum").item()
        return {"test_accuracy": 100.0 * correct / len(self.test_x), "test_loss": loss / len(self.test_x)}

    def eval_loss(self, solver: Solver) -> torch.Tensor:
        return F.cross_entropy(self.logits(self.test_x[: self.eval_batch_size], solver),
                               self.test_y[: self.eval_batch_size])

    def check_loss(self, solver: Solver) -> torch.Tensor:
        self.encoder.eval()  # batch statistics would make the check depend on nothing but the batch; use running ones
        try:
            return F.cross_entropy(self.logits(self.train_x[: self.check_size], solver),
                                   self.train_y[: self.check_size])
        finally:
            self.encoder.train()
