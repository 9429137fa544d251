"""Labelled time series -> tensors a neural CDE reads: padded to one grid, normalised, time appended, split.

`load_splits(data, ...)` reads Speech Commands (tasks/data/speech_commands.py, split as the seminorm paper's code)
or a UEA dataset (tasks/data/uea.py, its official split) and prepares it. The preprocessing follows Kidger et al.:
channels are normalised with training-set statistics and time is always appended as a channel (so the path determines
its own parametrisation). Two choices, each a task setting:

- `split`: `given` keeps the data set's own split (UEA: official train/test, no validation set; Speech Commands: the
  authors' split below); `authors` pools every series (UEA: TRAIN then TEST) and splits them as the seminorm
  authors' datasets/time_series.py does: 70% train, then the rest halved into val/test, each stratified by label
  (sklearn `train_test_split`, random_state 0, then 1).
- `padding`: `last` pads a shorter series by repeating its last observation, time included, so its path is constant
  after its end and the hidden state stops changing there (NaNs inside a series are filled forward); `nan` is the
  authors' pipeline: NaN-padded series, normalised in float32 with the mean and (unbiased) std of the training set's
  observed values, then the time channel 0..L-1 prepended for every row, padding included, so time keeps running;
  torchcde's linear interpolation (tasks/models/ncde.py) then fills each NaN (a padded tail is constant at the last
  observation while time still rises, so the hidden state keeps evolving to the common end time).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from tasks.data.speech_commands import load_speech_commands
from tasks.data.uea import load_uea


@dataclass
class SeriesSplits:
    """Series on the common grid 0..length-1, shape (N, length, channels), time as channel 0; labels 0..C-1."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    val_x: torch.Tensor | None
    val_y: torch.Tensor | None
    classes: list[str]
    description: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return self.train_x.shape[-1]


def encode_labels(*label_sets: Sequence) -> tuple[list[str], list[torch.Tensor]]:
    """Class names (sorted, from every split) and each split's labels as class indices."""
    classes = sorted({str(v) for labels in label_sets for v in labels}, key=_natural)
    index = {name: i for i, name in enumerate(classes)}
    return classes, [torch.tensor([index[str(v)] for v in labels], dtype=torch.long) for labels in label_sets]


def _natural(name: str) -> tuple:
    return (0, float(name), name) if _is_number(name) else (1, 0.0, name)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def channel_stats(series: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per channel over every (non-NaN) observation of `series`, each of shape (length_i, channels)."""
    stacked = np.concatenate([np.asarray(s, dtype=np.float64) for s in series], axis=0)
    return np.nanmean(stacked, axis=0), np.nanstd(stacked, axis=0, ddof=1)


def to_grid(series: Sequence[np.ndarray], length: int, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """Normalise each series, prepend the time channel 0..len-1, fill NaNs forward, and pad to `length` by repeating
    the last observation (time included). Returns (N, length, 1 + channels) float32."""
    out = np.empty((len(series), length, 1 + len(mean)), dtype=np.float32)
    for i, s in enumerate(series):
        s = (np.asarray(s, dtype=np.float64) - mean) / (std + 1e-5)
        n = min(len(s), length)
        s = _fill_forward(s[:n])
        out[i, :n, 0] = np.arange(n)
        out[i, :n, 1:] = s
        out[i, n:] = out[i, n - 1]
    return torch.from_numpy(out)


def _fill_forward(s: np.ndarray) -> np.ndarray:
    """Replace NaNs by the last observed value of their channel (by 0 before the first observation)."""
    if not np.isnan(s).any():
        return s
    s = s.copy()
    for c in range(s.shape[1]):
        last = 0.0
        for t in range(s.shape[0]):
            if np.isnan(s[t, c]):
                s[t, c] = last
            else:
                last = s[t, c]
    return s


def nan_padded(series: Sequence[np.ndarray], length: int) -> torch.Tensor:
    """(N, length, channels) float32, each series at the start and NaN after its end (the authors' tensors)."""
    out = np.full((len(series), length, np.asarray(series[0]).shape[1]), np.nan, dtype=np.float64)
    for i, s in enumerate(series):
        out[i, :len(s)] = np.asarray(s, dtype=np.float64)[:length]
    return torch.from_numpy(out).float()


def normalise_nan_padded(xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The authors' `_normalise_data` and `_append_extra` (datasets/time_series.py) in float32: per channel, the
    mean and unbiased std of the first tensor's (training set's) non-NaN values, (x - mean) / (std + 1e-5); NaNs stay;
    then time 0..L-1 prepended as channel 0 of every row."""
    train = xs[0]
    out = []
    for x in xs:
        channels = []
        for xi, train_xi in zip(x.unbind(-1), train.unbind(-1)):
            observed = train_xi.masked_select(~torch.isnan(train_xi))
            channels.append((xi - observed.mean()) / (observed.std() + 1e-5))
        x = torch.stack(channels, dim=-1)
        times = torch.linspace(0, x.shape[1] - 1, x.shape[1]).expand(x.shape[0], -1).unsqueeze(-1)
        out.append(torch.cat([times, x], dim=-1))
    return out


PADDINGS = ("last", "nan")
SPLITS = ("given", "authors")


def prepare(train: Sequence[np.ndarray], train_labels: Sequence, test: Sequence[np.ndarray], test_labels: Sequence,
            description: str, val: Sequence[np.ndarray] | None = None, val_labels: Sequence | None = None,
            padding: str = "last") -> SeriesSplits:
    """Normalise with training statistics, append time, pad every split to the longest series of any split."""
    splits = [train, test] + ([val] if val is not None else [])
    length = max(len(s) for split in splits for s in split)
    labels = [train_labels, test_labels] + ([val_labels] if val is not None else [])
    classes, encoded = encode_labels(*labels)
    if padding == "nan":
        xs = normalise_nan_padded([nan_padded(split, length) for split in splits])
    else:
        mean, std = channel_stats(train)
        xs = [to_grid(split, length, mean, std) for split in splits]
    return SeriesSplits(
        train_x=xs[0], train_y=encoded[0], test_x=xs[1], test_y=encoded[1],
        val_x=xs[2] if val is not None else None, val_y=encoded[2] if val is not None else None,
        classes=classes, description=description,
    )


def authors_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, val, test) of the seminorm authors' split of pooled data (datasets/time_series.py
    `_split_data`): 70% train, then the rest halved into val (first) and test, stratified, random_state 0 then 1;
    each in train_test_split's shuffled order."""
    index = np.arange(len(labels))
    train, rest = train_test_split(index, train_size=0.7, random_state=0, shuffle=True, stratify=labels)
    val, test = train_test_split(rest, train_size=0.5, random_state=1, shuffle=True, stratify=labels[rest])
    return train, val, test


@functools.lru_cache(maxsize=4)
def load_splits(data: str, data_dir: str, download: bool, split: str = "given", padding: str = "last",
                ) -> SeriesSplits:
    """The prepared splits of `data` (cached per process: the float64 gradient check rebuilds the task)."""
    if split not in SPLITS:
        raise ValueError(f"task.split={split!r} is not known; choose one of {', '.join(SPLITS)}")
    if padding not in PADDINGS:
        raise ValueError(f"task.padding={padding!r} is not known; choose one of {', '.join(PADDINGS)}")
    if data == "speech_commands":
        x, y, description = load_speech_commands(data_dir, download_if_missing=download)
        series, labels = list(x.numpy()), y.numpy()  # its given split is the authors' split
    elif data.startswith("uea/"):
        train_x, train_y, test_x, test_y, description = load_uea(data[4:], data_dir, download=download)
        if split == "given":
            return prepare(train_x, train_y, test_x, test_y, description, padding=padding)
        series, labels = list(train_x) + list(test_x), np.concatenate([train_y, test_y])
        description += " (TRAIN and TEST pooled, split 70/15/15 as the seminorm authors')"
    else:
        raise ValueError(f"task.data={data!r} is not known; use speech_commands or uea/<Name> (e.g. "
                         f"uea/JapaneseVowels)")
    train, val, test = authors_split(np.asarray(labels))

    def pick(index: np.ndarray) -> list[np.ndarray]:
        return [series[i] for i in index]

    return prepare(pick(train), labels[train], pick(test), labels[test], description, val=pick(val),
                   val_labels=labels[val], padding=padding)
