"""Ornstein–Uhlenbeck SDE (the GQ paper's SDE experiment): learn drift and diffusion from sample paths.

Data (tasks/data/ornstein_uhlenbeck.py): the Stratonovich SDE dX = (mu t - theta X) dt + (sigma + phi t) o dW (mu 0.2,
theta 0.1, sigma 0.6, phi 0.15), t in [0, 10] at 101 equal times, X0 ~ U(-3, 3); `train_initial` initial values x
`samples` paths each (paper: 200 x 45 train, 20 x 45 test), simulated with torchsde (reversible Heun, dt 0.01) in
float64 from a seeded Brownian motion.

Model: drift and diffusion both time-dependent MLPs of width `width` (diagonal noise, Stratonovich).
Loss and metric (the paper's): at every time after t0 and for every initial value, fit a Gaussian (mean, std over
the samples) to the predicted and to the true values; KL(predicted || true), averaged.

`train_as`:
  - `wong_zakai`: train the ODE dx/dt = f + g xi(t) with smooth noise (tasks.models.wong_zakai; fresh xi per step)
    through `solver.solve`, so ANY ODE gradient method applies; then the same f, g are evaluated as the SDE.
  - `sde`: train the SDE itself through `solver.solve_sde` (torchsde direct / adjoint: the baseline rows).
Evaluation always solves the SDE with torchsde (reversible Heun, `eval_dt`) under no_grad: `test_kl` (the headline)
is the transferred SDE's KL; `ode_test_kl` the Wong–Zakai ODE's (wong_zakai runs only).
"""

from __future__ import annotations

import torch
import torchsde
from torch.distributions import Normal, kl_divergence

from tasks.base import (
    OU_CHECK_NOISE,
    OU_EVAL_NOISE,
    STEP_BROWNIAN,
    STEP_NOISE,
    Solver,
    Task,
    positive_ints,
)
from tasks.data.ornstein_uhlenbeck import simulate_ou
from tasks.models.mlp import NeuralSDE
from tasks.models.wong_zakai import WongZakaiODE

# The entropy of the Brownian motion every evaluation of the transferred SDE uses: one fixed set of paths, the same
# for every seed and run, so test_kl compares models on the same noise. Never change it (it fixes the test metric).
EVAL_BROWNIAN_ENTROPY = 12345


def gaussian_kl(predicted: torch.Tensor, true: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """KL(N(pred mean, pred std) || N(true mean, true std)) per (initial value, time), averaged; samples on dim 1."""
    p = Normal(predicted.mean(1), predicted.std(1) + eps)
    q = Normal(true.mean(1), true.std(1) + eps)
    return kl_divergence(p, q).mean()


class OUSDE(Task):
    metric = "test_kl"

    def __init__(
        self, seed: int, device: torch.device, dtype: torch.dtype,
        width: int = 5,
        train_as: str = "wong_zakai",
        ncosines: int = 10,
        batch_size: int = 40,
        train_initial: int = 200,
        test_initial: int = 20,
        samples: int = 45,
        num_times: int = 101,
        t_end: float = 10.0,
        data_dt: float = 0.01,
        eval_dt: float = 0.01,
        train_seed: int = 982846947,
        test_seed: int = 535617672,
    ) -> None:
        super().__init__(seed, device, dtype)
        if train_as not in ("wong_zakai", "sde"):
            raise ValueError(f"task.train_as={train_as!r} is not a training mode; choose wong_zakai or sde")
        positive_ints(width=width, batch_size=batch_size, train_initial=train_initial, test_initial=test_initial,
                      samples=samples)
        if samples < 2 or num_times < 2:
            raise ValueError("task.samples and task.num_times must be at least 2 (a Gaussian per time needs 2 samples)")
        self.dataset = "ornstein_uhlenbeck (simulated with torchsde)"
        self.train_as, self.samples, self.eval_dt = train_as, samples, eval_dt
        self.batch_size = min(batch_size, train_initial)
        ts64 = torch.linspace(0, t_end, num_times, dtype=torch.float64)
        self.train_paths = simulate_ou(train_initial, samples, ts64, data_dt, train_seed).to(device, dtype)
        self.test_paths = simulate_ou(test_initial, samples, ts64, data_dt, test_seed).to(device, dtype)
        self.ts = ts64.to(device, dtype)
        self.sde = NeuralSDE(1, width).to(device, dtype)
        self.model = self.sde
        self.ode = WongZakaiODE(self.sde, 0.0, t_end, ncosines)

    def _x0(self, paths: torch.Tensor) -> torch.Tensor:
        return paths[:, :, 0].reshape(-1, 1)

    def _as_paths(self, ys: torch.Tensor, initial: int) -> torch.Tensor:
        """(len(ts), initial * samples, 1) -> (initial, samples, len(ts))."""
        return ys[..., 0].T.reshape(initial, self.samples, len(self.ts))

    def predict_ode(self, paths: torch.Tensor, solver: Solver, generator: torch.Generator) -> torch.Tensor:
        x0 = self._x0(paths)
        self.ode.resample(x0, generator)
        return self._as_paths(solver.solve(self.ode, x0, self.ts), len(paths))

    def predict_sde(self, paths: torch.Tensor, solve, entropy: int) -> torch.Tensor:
        x0 = self._x0(paths)
        bm = torchsde.BrownianInterval(t0=float(self.ts[0]), t1=float(self.ts[-1]), size=x0.shape, dtype=x0.dtype,
                                       device=x0.device, entropy=entropy, levy_area_approximation="none")
        return self._as_paths(solve(self.sde, x0, self.ts, bm), len(paths))

    def kl(self, predicted: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        return gaussian_kl(predicted[..., 1:], true[..., 1:])  # t0: every path starts at x0 (zero spread)

    def _batch(self, step: int) -> torch.Tensor:
        index = torch.randperm(len(self.train_paths), generator=self.generator(step))[: self.batch_size]
        return self.train_paths[index.to(self.device)]

    def train_loss(self, step: int, solver: Solver) -> torch.Tensor:
        paths = self._batch(step)
        if self.train_as == "wong_zakai":
            return self.kl(self.predict_ode(paths, solver, self.generator(step, STEP_NOISE)), paths)
        return self.kl(self.predict_sde(paths, solver.solve_sde, self.entropy(step, STEP_BROWNIAN)), paths)

    def _sdeint(self, sde, x0, ts, bm):
        return torchsde.sdeint(sde, x0, ts, bm=bm, method="reversible_heun", dt=self.eval_dt)

    @torch.no_grad()
    def evaluate(self, solver: Solver) -> dict[str, float]:
        sde = self.predict_sde(self.test_paths, self._sdeint, EVAL_BROWNIAN_ENTROPY)
        out = {"test_kl": self.kl(sde, self.test_paths).item()}
        if self.train_as == "wong_zakai":
            ode = self.predict_ode(self.test_paths, solver, self.generator(OU_EVAL_NOISE))
            out["ode_test_kl"] = self.kl(ode, self.test_paths).item()
        return out

    def check_loss(self, solver: Solver) -> torch.Tensor | None:
        """Wong–Zakai mode: a deterministic ODE loss (fixed coefficients) on the first few initial values."""
        if self.train_as != "wong_zakai":
            return None
        paths = self.train_paths[: min(4, len(self.train_paths))]
        return self.kl(self.predict_ode(paths, solver, self.generator(OU_CHECK_NOISE)), paths)
