"""Speech Commands v0.02 (Warden 2018) as the seminorm paper used it: 10 words, one-second clips, 20 MFCCs.

The archive (`speech_commands_v0.02.tar.gz`) unpacks to one folder per word holding 16 kHz mono 16-bit WAV clips,
`<word>/<speaker>_nohash_<n>.wav`. Following Kidger et al.'s code: keep the ten words below, drop clips that are not
exactly 16000 samples long (34975 clips remain), scale to [-1, 1), and take torchaudio's
`MFCC(log_mels=True, n_mfcc=20, melkwargs=dict(n_fft=200, n_mels=64))`: 161 frames x 20 coefficients.

torchaudio does not install everywhere, so the MFCCs come from librosa configured to compute the same transform
(HTK mel scale without filter normalisation, power spectrogram with a periodic Hann window, hop n_fft // 2,
reflect-padded centred frames, log(mel + 1e-6), orthonormal DCT-II). The features are cached next to the clips, so
the WAV files are read once.
"""

from __future__ import annotations

import logging
import tarfile
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.io import wavfile

from tasks.base import DataUnavailable

log = logging.getLogger(__name__)

URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
MFCC = {"n_mfcc": 20, "n_fft": 200, "n_mels": 64}
CACHE = "mfcc_cache.pt"


def mfcc(audio: np.ndarray) -> np.ndarray:
    """(N, samples) float audio -> (N, frames, 20) MFCCs, torchaudio's MFCC(log_mels=True) settings via librosa."""
    import librosa

    n_fft = MFCC["n_fft"]
    with warnings.catch_warnings():  # 64 mel bands over 101 FFT bins leave some bands empty (torchaudio's too)
        warnings.filterwarnings("ignore", message="Empty filters detected")
        mel = librosa.feature.melspectrogram(
            y=audio.astype(np.float32), sr=SAMPLE_RATE, n_fft=n_fft, hop_length=n_fft // 2, win_length=n_fft,
            window="hann", center=True, pad_mode="reflect", power=2.0, n_mels=MFCC["n_mels"], fmin=0.0,
            fmax=SAMPLE_RATE / 2, htk=True, norm=None,
        )
    coefficients = librosa.feature.mfcc(S=np.log(mel + 1e-6), n_mfcc=MFCC["n_mfcc"], dct_type=2, norm="ortho")
    return np.swapaxes(coefficients, -1, -2)


def _has_clips(root: Path) -> bool:
    return all((root / word).is_dir() for word in WORDS)


def download(root: Path) -> None:
    """Fetch and unpack the archive into `root` (the word folders land directly in it)."""
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "speech_commands_v0.02.tar.gz"
    if not archive.exists():
        log.info("downloading %s to %s", URL, archive)
        partial = archive.with_suffix(".partial")
        urllib.request.urlretrieve(URL, partial)
        partial.replace(archive)
    with tarfile.open(archive, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12: refuse unsafe members
            tar.extractall(root, filter="data")
        else:
            tar.extractall(root)


def read_clips(root: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Every full-length clip of the ten words: (audio (N, 16000) in [-1, 1), labels (N,) word indices, dropped)."""
    audio, labels, dropped = [], [], 0
    for label, word in enumerate(WORDS):
        for path in sorted((root / word).glob("*.wav")):
            rate, samples = wavfile.read(path)
            if rate != SAMPLE_RATE:
                raise ValueError(f"{path}: sample rate {rate}, expected {SAMPLE_RATE}")
            if samples.ndim != 1 or len(samples) != CLIP_SAMPLES:
                dropped += 1
                continue
            audio.append(samples.astype(np.float32) / 2**15)
            labels.append(label)
    if not audio:
        raise DataUnavailable(f"no full-length clips of {', '.join(WORDS)} below {root}")
    return np.stack(audio), np.asarray(labels), dropped


def load_speech_commands(data_dir: str | Path, download_if_missing: bool = True,
                         ) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(MFCCs (N, 161, 20) float32, labels (N,), description), from `<data_dir>/speech_commands/`."""
    root = Path(data_dir) / "speech_commands"
    cache = root / CACHE
    if cache.exists():
        saved = torch.load(cache)
        return saved["x"], saved["y"], saved["description"]
    if not _has_clips(root):
        where = (f"Speech Commands: no word folders ({', '.join(WORDS)}) in {root}; unpack "
                 f"speech_commands_v0.02.tar.gz there or allow the download (task.download=true, needs a network)")
        if not download_if_missing:
            raise DataUnavailable(where)
        try:
            download(root)
        except OSError as exc:  # URLError included: no network
            raise DataUnavailable(f"{where}; the download failed: {exc}") from exc
    audio, labels, dropped = read_clips(root)
    features = np.concatenate([mfcc(chunk) for chunk in np.array_split(audio, max(1, len(audio) // 2048))])
    description = f"Speech Commands v0.02 ({len(labels)} clips of 10 words, {dropped} short clips dropped; {root})"
    x, y = torch.from_numpy(features.astype(np.float32)), torch.from_numpy(labels).long()
    torch.save({"x": x, "y": y, "description": description}, cache)
    return x, y, description
