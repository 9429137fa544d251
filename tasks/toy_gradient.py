"""The GQ paper's analytical gradient test (its Figure 1, most likely): dz/dt = a z, L = z(T)^2.

z(T) = z0 e^{aT}, so dL/dz0 = 2 z0 e^{2aT}, dL/da = 2 T z0^2 e^{2aT}, dL/dT = 2 a z0^2 e^{2aT}. For every end time
T of a sweep (paper: 19 to 29 in steps of 0.02, z0 = 10, a = 0.2) the method's loss and gradients are compared with
these; the metric is their relative error |numerical - true| / |true|. Always float64 (it measures the method, not
round-off). Training steps only time one gradient at the largest T (the parameter a is never updated in the
evaluation: each evaluation rebuilds the field with a = a0).
"""

from __future__ import annotations

import math

import torch

from tasks.base import Solver, Task
from tasks.models.exponential import Exponential


def analytic(z0: float, a: float, T: float) -> dict[str, float]:
    e = math.exp(2 * a * T)
    return {"loss": z0**2 * e, "dz0": 2 * z0 * e, "da": 2 * T * z0**2 * e, "dT": 2 * a * z0**2 * e}


class ToyGradient(Task):
    metric = "mean_rel_error_da"

    def __init__(self, seed: int, device: torch.device, dtype: torch.dtype, z0: float = 10.0, a: float = 0.2,
                 t_start: float = 19.0, t_stop: float = 29.0, t_step: float = 0.02) -> None:
        super().__init__(seed, device, dtype)
        if not (0 < t_start <= t_stop) or t_step <= 0:
            raise ValueError("task.t_start, t_stop and t_step must satisfy 0 < t_start <= t_stop and t_step > 0")
        self.dataset = "exponential ODE (analytic)"
        self.z0, self.a = z0, a
        count = int(round((t_stop - t_start) / t_step)) + 1
        self.end_times = [t_start + i * t_step for i in range(count)]
        self.field = Exponential(a).to(device)
        self.model = self.field

    def gradients(self, field: Exponential, T: float, solver: Solver) -> dict[str, float | None]:
        z0 = torch.tensor([self.z0], dtype=torch.float64, device=self.device, requires_grad=True)
        ts = torch.tensor([0.0, T], dtype=torch.float64, device=self.device, requires_grad=True)
        loss = solver.solve(field, z0, ts)[-1].pow(2).sum()
        dz0, da, dts = torch.autograd.grad(loss, (z0, field.a, ts), allow_unused=True)
        value = lambda g: None if g is None else g.item()
        return {"loss": loss.item(), "dz0": value(dz0), "da": value(da), "dT": None if dts is None else dts[1].item()}

    def train_loss(self, step: int, solver: Solver) -> torch.Tensor:
        z0 = torch.tensor([self.z0], dtype=torch.float64, device=self.device)
        ts = torch.tensor([0.0, self.end_times[-1]], dtype=torch.float64, device=self.device)
        return solver.solve(self.field, z0, ts)[-1].pow(2).sum() / analytic(self.z0, self.a, self.end_times[-1])["loss"]

    def evaluate(self, solver: Solver) -> dict[str, float]:
        errors: dict[str, list[float | None]] = {key: [] for key in ("loss", "dz0", "da", "dT")}
        with torch.enable_grad():
            for T in self.end_times:
                field = Exponential(self.a).to(self.device)
                got, true = self.gradients(field, T, solver), analytic(self.z0, self.a, T)
                for key in errors:
                    errors[key].append(None if got[key] is None else abs(got[key] - true[key]) / abs(true[key]))
        out: dict[str, object] = {"end_times": self.end_times}
        for key, values in errors.items():
            out[f"rel_error_{key}"] = values
            known = [v for v in values if v is not None]
            out[f"mean_rel_error_{key}"] = sum(known) / len(known) if known else None
            out[f"max_rel_error_{key}"] = max(known) if known else None
        return out
