"""UEA multivariate time-series classification archive: the real `.ts` files, wherever they come from.

Where a dataset's files are looked for, in order:
1. `<data_dir>/UEA/<Name>/<Name>_TRAIN.ts` and `_TEST.ts` (files you put there, or an earlier download);
2. the copy the `aeon` wheel ships (JapaneseVowels, BasicMotions, PickupGestureWiimoteZ, ...: no network needed);
3. a download through `aeon.datasets.load_classification` into `<data_dir>/UEA/` (cached there for next time).
Files are parsed with aeon's `.ts` reader. The returned description says which of the three was used, so a run's
record names its data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks.base import DataUnavailable


def _aeon_datasets():
    try:
        import aeon.datasets
    except ImportError as exc:  # pragma: no cover - aeon is a dependency
        raise ImportError("reading UEA .ts files needs the `aeon` package (pip install aeon)") from exc
    return aeon.datasets


def _read_ts(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """One .ts file -> (series, labels); each series is (length, channels), float64, NaN for missing values."""
    X, y = _aeon_datasets().load_from_ts_file(str(path))
    return [np.asarray(x, dtype=np.float64).T for x in X], np.asarray(y).astype(str)


def shipped_dir(name: str) -> Path:
    """Where the aeon wheel keeps `name`, if it ships it."""
    return Path(_aeon_datasets().__path__[0]) / "data" / name


def _files(folder: Path, name: str) -> tuple[Path, Path] | None:
    train, test = folder / f"{name}_TRAIN.ts", folder / f"{name}_TEST.ts"
    return (train, test) if train.exists() and test.exists() else None


def load_uea(name: str, data_dir: str | Path, download: bool = True,
             ) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray], np.ndarray, str]:
    """(train series, train labels, test series, test labels, description) of the UEA dataset `name`."""
    local = Path(data_dir) / "UEA" / name
    files = _files(local, name)
    source = f"{local} (.ts)"
    if files is None:
        files = _files(shipped_dir(name), name)
        source = "copy shipped with the aeon package (.ts)"
    if files is None:
        where = (f"UEA dataset {name}: no {name}_TRAIN.ts/{name}_TEST.ts in {local} and aeon does not ship it; "
                 f"put the files there or allow the download (task.download=true, needs a network)")
        if not download:
            raise DataUnavailable(where)
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            for split in ("train", "test"):  # downloads once into <data_dir>/UEA/<name>/, then read from there
                _aeon_datasets().load_classification(name, split=split, extract_path=str(local.parent))
        except (OSError, ValueError) as exc:  # aeon reports a failed download as ValueError
            raise DataUnavailable(f"{where}; the download failed: {exc}") from exc
        files = _files(local, name)
        if files is None:
            raise DataUnavailable(f"UEA dataset {name}: the download did not leave .ts files in {local}")
        source = f"downloaded to {local} (.ts)"
    train_x, train_y = _read_ts(files[0])
    test_x, test_y = _read_ts(files[1])
    return train_x, train_y, test_x, test_y, f"UEA {name}, {source}"
