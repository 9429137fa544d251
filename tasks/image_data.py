"""Image classification data for the GQ paper's image experiment, without needing a network.

- `mnist`: the real MNIST IDX files (train-images-idx3-ubyte[.gz], ...), read by our own IDX reader (no torchvision
  needed), from `root`; downloaded there first when missing and a network is reachable.
- `cifar10`, `svhn`: through torchvision (imported lazily, only when asked for), into `root`.
- `digits`: scikit-learn's 8x8 digits (1,797 images, ship with the wheel): the offline stand-in.
- `auto`: mnist when its files are in `root` (or download works), else digits.
Returns float images in [0, 1], shape (N, C, H, W), and int64 labels; `name` says what was actually loaded.
"""

from __future__ import annotations

import gzip
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"


@dataclass
class ImageData:
    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format: magic 0x0000 0x08 ndim, big-endian sizes, unsigned bytes), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (root / name).exists():
            return root / name
    return None


def load_mnist(root: Path, download: bool = True) -> ImageData:
    arrays = {}
    for stems in MNIST_FILES.values():
        for stem in stems:
            path = _find(root, stem)
            if path is None:
                if not download:
                    raise FileNotFoundError(f"{root / stem}[.gz] is missing")
                with urllib.request.urlopen(MNIST_MIRROR + stem + ".gz", timeout=20) as response:  # noqa: S310
                    payload = response.read()
                root.mkdir(parents=True, exist_ok=True)  # only once there is something to cache
                path = root / (stem + ".gz")
                path.write_bytes(payload)
            arrays[stem] = read_idx(path)
    images = lambda stem: torch.from_numpy(arrays[stem].astype(np.float32) / 255.0)[:, None]
    labels = lambda stem: torch.from_numpy(arrays[stem].astype(np.int64))
    (tri, trl), (tei, tel) = MNIST_FILES["train"], MNIST_FILES["test"]
    return ImageData("mnist", images(tri), labels(trl), images(tei), labels(tel))


def load_torchvision(name: str, root: Path) -> ImageData:
    try:
        import torchvision  # noqa: PLC0415 - optional, heavy; only for cifar10 / svhn
    except ImportError:
        raise RuntimeError(f"task.dataset={name} needs torchvision, which is not installed; "
                           "use mnist or digits") from None

    def as_tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:
        data = ds.data if name == "svhn" else np.transpose(ds.data, (0, 3, 1, 2))
        targets = ds.labels if name == "svhn" else ds.targets
        return torch.from_numpy(np.asarray(data, dtype=np.float32) / 255.0), torch.as_tensor(np.asarray(targets))

    if name == "cifar10":
        train = torchvision.datasets.CIFAR10(str(root), train=True, download=True)
        test = torchvision.datasets.CIFAR10(str(root), train=False, download=True)
    else:
        train = torchvision.datasets.SVHN(str(root), split="train", download=True)
        test = torchvision.datasets.SVHN(str(root), split="test", download=True)
    return ImageData(name, *as_tensors(train), *as_tensors(test))


def load_digits(test_fraction: float = 0.2) -> ImageData:
    from sklearn.datasets import load_digits as sklearn_digits  # noqa: PLC0415

    digits = sklearn_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]
    y = torch.from_numpy(digits.target.astype(np.int64))
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    n_test = int(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return ImageData("sklearn_digits_8x8 (offline stand-in for MNIST)", x[train], y[train], x[test], y[test])


def load_images(dataset: str, root: Path) -> ImageData:
    if dataset == "digits":
        return load_digits()
    if dataset == "mnist":
        return load_mnist(root)
    if dataset in ("cifar10", "svhn"):
        return load_torchvision(dataset, root)
    if dataset == "auto":
        try:
            return load_mnist(root, download=True)
        except Exception:  # noqa: BLE001 - offline or unreadable: fall back to the stand-in (named in `dataset`)
            return load_digits()
    raise ValueError(f"task.dataset={dataset!r} is not an image dataset; choose auto, mnist, cifar10, svhn or digits")
