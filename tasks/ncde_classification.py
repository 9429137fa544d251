"""Time-series classification with a neural CDE (test metric: accuracy, in [0, 1]).

`data` picks the series: `speech_commands` (the seminorm paper's experiment: 20 MFCCs of 10 spoken words, split
70/15/15 stratified as the authors' code) or `uea/<Name>` (a UEA archive dataset with its official train/test
split, e.g. `uea/JapaneseVowels`, which the aeon wheel ships: the offline stand-in for Speech Commands, or
`uea/CharacterTrajectories` for McCallum & Foster's experiment). Loading and preprocessing: tasks/data/time_series.py
(normalised channels, time appended; `split` and `padding` choose between the data set's own split with short series
padded by their last value, and the seminorm authors' pooled 70/15/15 split with NaN padding); the model:
tasks/models/ncde.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from tasks.base import TEST_DATA, TRAIN_DATA, VAL_DATA, Solver, Task, positive_ints
from tasks.data.time_series import load_splits
from tasks.models.ncde import INTERPOLATIONS, NeuralCDE, interpolation_coeffs, make_control


class NCDEClassification(Task):
    metric = "test_accuracy"
    lower_is_better = False

    def __init__(
        self, seed: int, device: torch.device, dtype: torch.dtype,
        data: str = "speech_commands",
        data_dir: str = "data",
        download: bool = True,
        hidden: int = 90,
        width: int = 40,
        depth: int = 4,
        interpolation: str = "linear",
        jump_at_knots: bool = True,
        jump_at_end: bool = False,
        split: str = "given",
        padding: str = "last",
        authors_init: bool = False,
        batch_size: int = 1024,
        eval_batch_size: int = 1024,
        max_train: int = 0,
        max_test: int = 0,
        check_size: int = 8,
    ) -> None:
        super().__init__(seed, device, dtype)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"task.interpolation={interpolation!r} is not known; choose one of "
                             f"{', '.join(INTERPOLATIONS)}")
        positive_ints(hidden=hidden, width=width, depth=depth, batch_size=batch_size,
                      eval_batch_size=eval_batch_size, check_size=check_size)
        for key, value in (("max_train", max_train), ("max_test", max_test)):
            if value < 0:
                raise ValueError(f"task.{key} must be 0 (all) or positive, got {value}")
        splits = load_splits(data, str(Path(data_dir)), download, split, padding)
        self.interpolation = interpolation
        self.jump_at_knots = jump_at_knots
        self.jump_at_end = jump_at_end
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        train_x, train_y = self.subset(max_train, TRAIN_DATA, splits.train_x, splits.train_y)
        test_x, test_y = self.subset(max_test, TEST_DATA, splits.test_x, splits.test_y)
        self.has_val = splits.val_x is not None
        if self.has_val:
            val_x, val_y = self.subset(max_test, VAL_DATA, splits.val_x, splits.val_y)
        held_x, held_y = (val_x, val_y) if self.has_val else (test_x, test_y)
        self.val_coeffs = self._coeffs(held_x) if self.has_val else None
        self.val_y = held_y.to(device) if self.has_val else None
        self.pass_splits = ("train", "val", "test") if self.has_val else ("train", "test")
        held_x, held_y = held_x[:eval_batch_size], held_y[:eval_batch_size]
        val = f"{len(val_y)} val / " if self.has_val else ""
        sizes = f"{len(train_y)} train / {val}{len(test_y)} test series"
        self.dataset = f"{splits.description}; {sizes}, length {splits.train_x.shape[1]}, {splits.channels} channels"
        self.train_coeffs, self.train_y = self._coeffs(train_x), train_y.to(device)
        self.test_coeffs, self.test_y = self._coeffs(test_x), test_y.to(device)
        self.held_coeffs, self.held_y = self._coeffs(held_x), held_y.to(device)
        self.check_coeffs, self.check_y = self.train_coeffs[:check_size], self.train_y[:check_size]
        self.model = NeuralCDE(splits.channels, hidden, width, depth, splits.num_classes, authors_init)
        self.model.to(device, dtype)

    def _coeffs(self, x: torch.Tensor) -> torch.Tensor:
        return interpolation_coeffs(x.to(self.device, self.dtype), self.interpolation)

    def logits(self, coeffs: torch.Tensor, solver: Solver) -> torch.Tensor:
        return self.model(make_control(coeffs, self.interpolation), solver.solve, self.jump_at_knots, self.jump_at_end)

    def train_loss(self, step: int, solver: Solver) -> torch.Tensor:
        idx = self.epoch_batch(len(self.train_y), self.batch_size, step)
        return F.cross_entropy(self.logits(self.train_coeffs[idx], solver), self.train_y[idx])

    @torch.no_grad()
    def evaluate(self, solver: Solver) -> dict[str, float]:
        correct, loss = 0, 0.0
        for coeffs, y in zip(self.test_coeffs.split(self.eval_batch_size), self.test_y.split(self.eval_batch_size)):
            logits = self.logits(coeffs, solver)
            correct += (logits.argmax(-1) == y).sum().item()
            loss += F.cross_entropy(logits, y, reduction="sum").item()
        n = len(self.test_y)
        return {"test_accuracy": correct / n, "test_loss": loss / n}

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_y) / self.batch_size)

    def pass_batches(self, split: str, solver: Solver) -> Iterator[tuple[torch.Tensor, int, dict[str, float]]]:
        coeffs, labels = {"train": (self.train_coeffs, self.train_y), "val": (self.val_coeffs, self.val_y),
                          "test": (self.test_coeffs, self.test_y)}[split]
        for c, y in zip(coeffs.split(self.eval_batch_size), labels.split(self.eval_batch_size)):
            logits = self.logits(c, solver)
            yield F.cross_entropy(logits, y), len(y), {"accuracy": float((logits.argmax(-1) == y).sum().item())}

    def eval_loss(self, solver: Solver) -> torch.Tensor:
        return F.cross_entropy(self.logits(self.held_coeffs, solver), self.held_y)

    def check_loss(self, solver: Solver) -> torch.Tensor:
        return F.cross_entropy(self.logits(self.check_coeffs, solver), self.check_y)
