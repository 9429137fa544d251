"""Memory measurements that mean the same thing for every method.

- `graph_mib`: the bytes autograd holds between a forward pass and its backward pass (tensors saved for backward,
  parameters excluded, each storage counted once), measured on one iteration with saved-tensor hooks. This is the
  memory a gradient method trades against compute, it grows with the number of solver steps for direct backprop
  and not for adjoint or reversible methods, and it is measurable on CPU as well as on GPU.
- `peak_cuda_mib`: torch.cuda.max_memory_allocated over the training steps (evaluation excluded), on CUDA only.
- `peak_rss_mib`: the process's peak resident memory (whole process, all phases): a coarse CPU figure.
"""

from __future__ import annotations

import resource
import sys
from contextlib import contextmanager

import torch
from torch import nn

MIB = 2**20


@contextmanager
def saved_tensor_meter(model: nn.Module):
    """Yields a dict whose 'mib' is set, on exit, to the MiB of non-parameter storages saved for backward."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}
    out = {"mib": 0.0}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in params:
            storages[ptr] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield out
    out["mib"] = sum(storages.values()) / MIB


def peak_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / MIB if sys.platform == "darwin" else rss / 1024


class CudaPeak:
    """Peak CUDA memory over the training steps only: `pause()` before an evaluation, `resume()` after it."""

    def __init__(self, device: torch.device) -> None:
        self.enabled = device.type == "cuda"
        self.device = device
        self.peak = 0
        self.resume()

    def resume(self) -> None:
        if self.enabled:
            torch.cuda.reset_peak_memory_stats(self.device)

    def pause(self) -> None:
        if self.enabled:
            self.peak = max(self.peak, torch.cuda.max_memory_allocated(self.device))

    def mib(self) -> float | None:
        self.pause()
        return self.peak / MIB if self.enabled else None
