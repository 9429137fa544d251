"""The real-format loaders of the seminorm tasks, fed small files generated in each format."""

from __future__ import annotations

import gzip
import pickle
import shutil
import tarfile
import warnings

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from tasks.base import DataUnavailable
from tasks.data import images as image_data
from tasks.data import speech_commands as speech_commands_data
from tasks.data.acrobot import split_windows
from tasks.data.speech_commands import WORDS, load_speech_commands
from tasks.data.uea import load_uea
from tasks.ncde_classification import NCDEClassification


def _write_clips(root, per_word: int = 2) -> dict[str, np.ndarray]:
    """<root>/<word>/<speaker>_nohash_<n>.wav, 16 kHz int16: a tone per word in white noise, clip n at amplitude
    n + 1; plus one short clip, to be dropped."""
    clips = {}
    t = np.arange(16000) / 16000
    noise = np.random.default_rng(0).normal(size=16000)
    for w, word in enumerate(WORDS):
        (root / word).mkdir(parents=True)
        for n in range(per_word):
            signal = 0.05 * noise + 0.1 * np.sin(2 * np.pi * (200 + 150 * w) * t)
            audio = np.round((n + 1) * signal * 2**14).astype(np.int16)
            wavfile.write(root / word / f"speaker{n}_nohash_0.wav", 16000, audio)
            clips[f"{word}/{n}"] = audio
    wavfile.write(root / "yes" / "short_nohash_0.wav", 16000, np.zeros(12000, dtype=np.int16))
    return clips


def test_speech_commands_reads_the_word_folders_and_computes_mfccs(tmp_path):
    _write_clips(tmp_path / "speech_commands")
    x, y, description = load_speech_commands(tmp_path, download_if_missing=False)
    assert x.shape == (20, 161, 20)  # 16000 samples, hop 100, centred frames; 20 coefficients
    assert y.tolist() == [i for i in range(10) for _ in range(2)]
    assert "1 short clips dropped" in description
    # Doubling the amplitude multiplies the mel power by 4, so log(mel + 1e-6) rises by log 4 in every mel band that
    # has a filter (with n_fft=200, some of the 64 bands have none, in torchaudio too); the MFCC shift is then the
    # orthonormal DCT-II of that step vector, in every frame (up to int16 rounding, and the 1e-6 in frames where a
    # one-bin band happens to hold almost no noise power: hence the median over frames).
    import librosa
    from scipy.fft import dct

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bands = librosa.filters.mel(sr=16000, n_fft=200, n_mels=64, htk=True, norm=None).sum(axis=1) > 0
    expected = dct(np.where(bands, np.log(4), 0.0), type=2, norm="ortho")[:20]
    shift = np.median((x[1] - x[0]).numpy(), axis=0)
    assert np.allclose(shift, expected, atol=1e-2)
    # different words (tones) give different features
    assert (x[0] - x[2]).abs().mean() > 1.0
    # cached: a second load does not need the clips
    shutil.rmtree(tmp_path / "speech_commands" / "yes")
    x2, y2, _ = load_speech_commands(tmp_path, download_if_missing=False)
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_speech_commands_downloads_and_unpacks_the_archive(tmp_path, monkeypatch):
    source = tmp_path / "source"
    _write_clips(source, per_word=1)
    archive = tmp_path / "speech_commands_v0.02.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # the real archive has the word folders at its top level
        for word in WORDS:
            tar.add(source / word, arcname=f"./{word}")
    fetched = []
    monkeypatch.setattr(speech_commands_data.urllib.request, "urlretrieve",
                        lambda url, dest: fetched.append(url) or shutil.copy(archive, dest))
    x, y, _ = load_speech_commands(tmp_path / "data", download_if_missing=True)
    assert fetched == [speech_commands_data.URL]
    assert x.shape == (10, 161, 20) and sorted(y.tolist()) == list(range(10))


def test_speech_commands_without_data_or_network_says_where_to_put_it(tmp_path):
    with pytest.raises(DataUnavailable, match="speech_commands_v0.02.tar.gz"):
        load_speech_commands(tmp_path, download_if_missing=False)


TS_HEADER = """#A generated two-channel problem with unequal lengths
@problemName Toy
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength false
@classLabel true a b
@data
"""


def _write_ts(path, series: list[np.ndarray], labels: list[str]) -> None:
    lines = [":".join(",".join(f"{v:g}" for v in channel) for channel in s.T) + f":{label}"
             for s, label in zip(series, labels)]
    path.write_text(TS_HEADER + "\n".join(lines) + "\n")


def test_uea_loader_reads_ts_files_and_the_task_pads_with_the_last_value(tmp_path):
    folder = tmp_path / "UEA" / "Toy"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train = [rng.normal(size=(n, 2)).round(3) for n in (5, 3, 4, 6)]
    test = [rng.normal(size=(n, 2)).round(3) for n in (4, 2)]
    _write_ts(folder / "Toy_TRAIN.ts", train, ["a", "b", "a", "b"])
    _write_ts(folder / "Toy_TEST.ts", test, ["b", "a"])
    train_x, train_y, test_x, _, description = load_uea("Toy", tmp_path, download=False)
    assert [s.shape for s in train_x] == [(5, 2), (3, 2), (4, 2), (6, 2)]
    assert np.allclose(train_x[1], train[1]) and list(train_y) == ["a", "b", "a", "b"]
    assert str(folder) in description

    task = NCDEClassification(0, torch.device("cpu"), torch.float64, data="uea/Toy", data_dir=str(tmp_path),
                              download=False, hidden=4, width=4, depth=1, batch_size=2, check_size=2)
    assert task.dataset.startswith("UEA Toy") and task.train_y.tolist() == [0, 1, 0, 1]
    path = task.train_coeffs  # linear coefficients are the series itself: (4 series, 6 steps, time + 2 channels)
    assert path.shape == (4, 6, 3)
    short = path[1]  # 3 observations, then padded with the last one (time included): the path is constant
    assert short[:, 0].tolist() == [0, 1, 2, 2, 2, 2]
    assert torch.equal(short[3], short[2]) and torch.equal(short[5], short[2])
    stacked = np.concatenate(train)  # channels normalised with training statistics
    expected = (train[1] - stacked.mean(0)) / (stacked.std(0, ddof=1) + 1e-5)
    assert np.allclose(short[:3, 1:].numpy(), expected)


def test_uea_without_files_or_download_is_unavailable(tmp_path):
    with pytest.raises(DataUnavailable, match="NoSuchSet_TRAIN.ts"):
        load_uea("NoSuchSet", tmp_path, download=False)


def test_uea_shipped_copy_is_used_offline(tmp_path):
    train_x, train_y, test_x, test_y, description = load_uea("JapaneseVowels", tmp_path, download=False)
    assert (len(train_x), len(test_x)) == (270, 370) and train_x[0].shape[1] == 12
    assert "aeon" in description and sorted(set(train_y)) == [str(i) for i in range(1, 10)]


def _write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_mnist_idx_files_are_read(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    train, test = rng.integers(0, 256, (6, 28, 28)), rng.integers(0, 256, (3, 28, 28))
    _write_idx(raw / "train-images-idx3-ubyte.gz", train)
    _write_idx(raw / "t10k-images-idx3-ubyte.gz", test)
    _write_idx(raw / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 6))
    _write_idx(raw / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 3))
    images = image_data.load_images("mnist", tmp_path, download=False)
    assert images.levels == 256 and images.train_x.shape == (6, 1, 28, 28) and "MNIST" in images.description
    assert np.array_equal(images.train_x[:, 0].numpy(), train) and np.array_equal(images.test_x[:, 0].numpy(), test)


def test_cifar10_python_batches_are_read(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(2)
    batches = {name: rng.integers(0, 256, (2, 3072), dtype=np.uint8)
               for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]}
    for name, data in batches.items():
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": [0, 1]}, f)
    images = image_data.load_images("cifar10", tmp_path, download=False)
    assert images.train_x.shape == (10, 3, 32, 32) and images.test_x.shape == (2, 3, 32, 32)
    assert np.array_equal(images.test_x.numpy().reshape(2, -1), batches["test_batch"])  # channel-major, as CIFAR's
    assert images.train_y.tolist() == [0, 1] * 5


def test_offline_image_stand_ins_hold_every_class_in_both_splits():
    digits = image_data.load_images("digits", "unused")
    assert digits.levels == 17 and digits.train_x.shape[1:] == (1, 8, 8) and int(digits.train_x.max()) <= 16
    assert set(digits.train_y.tolist()) == set(digits.test_y.tolist()) == set(range(10))
    subset = image_data.load_images("mnist_subset", "unused")
    assert (len(subset.train_x), len(subset.test_x)) == (4000, 1000) and subset.levels == 256
    assert set(subset.test_y.tolist()) == set(range(10))


def test_acrobot_windows_split_by_trajectory():
    data = np.arange(9 * 10 * 12 * 8, dtype=float).reshape(9, 10, 12, 8)  # controls, trajectories, steps, channels
    train, val, test = split_windows(data, window=4)
    assert train.shape == (9 * 7 * 9, 4, 8) and val.shape == (9 * 1 * 9, 4, 8) and test.shape == (9 * 2 * 9, 4, 8)
    # a window is 4 consecutive steps of one trajectory
    assert np.array_equal(train[0, :, 0], data[0, 0, 0:4, 0]) and np.array_equal(train[1, :, 0], data[0, 0, 1:5, 0])
    test_trajectories = {tuple(w[0, :1]) for w in test}
    train_trajectories = {tuple(w[0, :1]) for w in train}
    assert not test_trajectories & train_trajectories


def test_speech_commands_task_splits_70_15_15_stratified_and_trains(tmp_path):
    """The paper-data path end to end on generated clips: MFCCs + time, the authors' stratified split, a step."""
    from solvers.adjoint import ContinuousAdjoint
    from solvers.base import SolverSpec

    _write_clips(tmp_path / "speech_commands", per_word=8)
    task = NCDEClassification(0, torch.device("cpu"), torch.float32, data="speech_commands", data_dir=str(tmp_path),
                              download=False, hidden=4, width=4, depth=1, batch_size=16, check_size=2)
    assert (len(task.train_y), len(task.held_y), len(task.test_y)) == (56, 12, 12)
    per_word = torch.bincount(task.train_y, minlength=10)
    assert per_word.min() >= 5 and per_word.max() <= 6  # stratified: 56 training clips spread over the 10 words
    assert task.train_coeffs.shape[1:] == (161, 21)  # 161 frames, time + 20 MFCCs
    assert task.dataset.startswith("Speech Commands v0.02 (80 clips of 10 words, 1 short clips dropped")
    method = ContinuousAdjoint(SolverSpec("dopri5", rtol=1e-3, atol=1e-6), norm="seminorm")
    loss = task.train_loss(0, method)
    loss.backward()
    counts = method.nfe.take()
    assert torch.isfinite(loss) and counts.fwd_nfe > 0 and counts.bwd_nfe > 0
    assert 0.0 <= task.evaluate(method)["test_accuracy"] <= 1.0
