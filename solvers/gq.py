"""The Gauss–Legendre quadrature adjoint (Norcliffe & Deisenroth 2023, "Faster Training of Neural ODEs Using
Gauss–Legendre Quadrature").

The continuous adjoint solves [y, a_y, a_theta] backwards, so its step-size controller and every backward evaluation
carry the parameter adjoint (one vector-Jacobian product with respect to every parameter per evaluation). GQ splits
the parameter gradient off:

    dL/dtheta = sum over intervals [t_{i-1}, t_i] of  int a(t)^T df/dtheta(t, y(t)) dt
              ~ sum over intervals of  sum_k w_k a(tau_k)^T df/dtheta(tau_k, y(tau_k))

The backward solve carries only [y, a] (vector-Jacobian products with respect to y alone); the states at the
Gauss–Legendre nodes tau_k come from the solver's dense output (they are output times of the backward solve); the
nodes of every interval are gathered, then the integrand at all of them is evaluated in batched calls
(torch.func.vmap over the nodes, `nodes_per_call` at a time) followed by ONE vector-Jacobian product with respect to
the parameters.

Where the speed comes from (`python -m runs.bench --section methods`, docs/gq.md: one CPU thread, every ratio paired
and interleaved in one process). Against torchdiffeq's adjoint GQ takes 0.05-0.54x the time on the bench's four
problems, and that splits into three factors that multiply:
  - torchdiffeq's Runge-Kutta arithmetic on the adjoint's parameter-sized state (its stage sums over a (state x
    stages) tensor and its dense-output fit, over [y, a_y, a_theta]): the same adjoint with the same steps on the
    harness's stepping core (`method=adjoint_core`) takes 0.24-0.83x torchdiffeq's time, the least on the widest
    models. GQ's backward state holds no parameters, so it never pays this;
  - the warm start (below): 0.49-0.69x, on the adjoint and on GQ alike;
  - GQ's own effect, a backward solve of [y, a] only plus the quadrature, against that adjoint with the same warm
    start: 0.37x on sines (width 1000, nine intervals), 0.75x on width-2000 nested spheres, but 1.07x on the small
    CNF and 1.19x on width-100 nested spheres, where the parameters are few.
Batching the node evaluations (vmap) saves 15% on sines (27 nodes per iteration) and nothing measurable on the other
three (3 nodes per iteration; the CNF's field cannot be vmapped at all). It is not where the speed comes from (this
docstring said it was until the ablation measured it).

Number of nodes per interval. The paper's rule is n = min(ceil(gtol * NFE_fwd * dt_i / T), 64) with gtol = 0.1. Two
ways it starves the quadrature, both measured (`tests/test_gq.py`, and the report of issue 7):
  - at loose tolerances the forward solve takes few steps, so short intervals get one or two nodes: at rtol 1e-3
    the parameter gradient is 10-1000x worse than the adjoint's. Fix: a floor, `min_nodes` (default 3, exact for
    polynomials of degree 5 per interval; 4 and 8 measured no better on the test problems);
  - gtol = 0.1 is about 0.6 nodes per dopri5 step, too few for an interval over which the solution turns (an
    oscillator over two periods: 15x the adjoint's error), and the cap of 64 truncates long intervals. Fix: gtol 0.2
    by default (about 1.2 nodes per step: the least that keeps the oscillator of the tests within the adjoint's and
    direct backprop's error), and past `max_nodes` the interval is split into equal panels (a composite rule)
    instead of being capped.
`gtol=0.1 min_nodes=1` with a single panel (`max_nodes=64`, short enough intervals) is the authors' rule. What ours
costs: each node is one evaluation (batched), and the count is max(3, ceil(0.2 * NFE_fwd * dt_i / T)) per interval
where the paper's is ceil(0.1 * NFE_fwd * dt_i / T): on the bench problems 3 nodes instead of 2 per iteration
(one interval) and 27 instead of 9 on sines (nine intervals), for at most 6% of the time and a 3-100x smaller
dL/dtheta error at rtol 1e-3.

Accuracy of the [y, a] solve (defaults since issue 15). dL/dy0 comes from this solve alone, and at the forward
tolerance it was up to 4.7x the adjoint's (dL/dtheta up to 2.1x) on small fields at rtol 1e-8, for two reasons,
each measured (`python -m runs.gq_accuracy`, docs/gq.md):
  - torchdiffeq steps past each interval's end and interpolates there; the dense output's error went into the
    adjoint carried to the next interval. Each solve now ends a step exactly at t_{i-1} (torchdiffeq's `step_t`),
    at no cost in steps;
  - the adjoint's a_y is more accurate than its tolerance asks because its step control also watches the parameter
    channels (the seminorm adjoint, which does not, has up to 6x the default adjoint's dL/dy0 error); GQ's solve has
    no such channels. It now runs at a tenth of the forward tolerance (`adjoint_tol_factor` 0.1; explicit
    `adjoint_rtol`/`adjoint_atol` override it). Warm-started, this costs nothing at rtol 1e-3 on the bench problems
    (one step per interval either way) and 17% more backward evaluations over the survey's 36 cases, which GQ still
    solves with 31% fewer than the adjoint.
With both, GQ's errors are at most 1.05x the larger of the adjoint's and the floor the forward solve leaves, from
rtol 1e-3 to 1e-8 (the acceptance test).

Warm start: the backward pass restarts its solve at every observation time (the adjoint jumps there). The initial-step
selection costs an evaluation and starts with a step far smaller than needed, which then takes several steps to
grow; each backward solve here instead starts with the step the previous one ended with (the forward solve's last
step, for the first). The rule is `solvers.core.WarmStart`, shared with `method=adjoint_core`, whose backward solve
gains as much from it; `warm_start=false` turns it off.

Norms: the backward state is [y, a], so a norm is handed the tuple (a_t, y, a_y) with a_t = 0 and no parameter
channels. `default`, `paper_default` and `seminorm` therefore take the same steps here (GQ has no parameter adjoint
for a norm to look at: that is the point of the method); `rms` is one RMS over [y, a].
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torchdiffeq

from solvers.base import ForwardSolve, OwnBackwardMethod, SolverSpec, backward_tolerances
from solvers.nfe import counter_of, unwrap
from solvers.norms import get_norm


@functools.lru_cache(maxsize=128)
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes (ascending) and weights on [-1, 1]."""
    return np.polynomial.legendre.leggauss(n)


def gauss_legendre(counts: Sequence[int], t0: torch.Tensor, t1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights of the composite rule on [t0, t1] (len(counts) equal panels, counts[j] nodes in panel j),
    nodes in descending order (the backward solve's order)."""
    nodes, weights = [], []
    edges = torch.linspace(0, 1, len(counts) + 1, dtype=t0.dtype, device=t0.device)
    for j, n in enumerate(counts):
        a = t0 + (t1 - t0) * edges[j]
        b = t0 + (t1 - t0) * edges[j + 1]
        x, w = _legendre(n)
        half = (b - a) / 2
        nodes.append(half * torch.as_tensor(x, dtype=t0.dtype, device=t0.device) + (a + b) / 2)
        weights.append(half * torch.as_tensor(w, dtype=t0.dtype, device=t0.device))
    return torch.cat(nodes).flip(0), torch.cat(weights).flip(0)


def node_counts(gtol: float, fwd_nfe: int, dt: float, span: float, min_nodes: int, max_nodes: int) -> list[int]:
    """Nodes of each panel of one interval: the paper's count, ceil(gtol * NFE_fwd * dt / T), raised to `min_nodes`;
    beyond `max_nodes` the interval is split into equal panels (composite rule) instead of capping the count."""
    wanted = max(math.ceil(gtol * fwd_nfe * abs(dt) / abs(span)) if span else 1, min_nodes, 1)
    panels = math.ceil(wanted / max_nodes)
    return [math.ceil(wanted / panels)] * panels


class _AugmentedDynamics:
    """d/dt [y, a] = [f(t, y), -a^T df/dy] on one flat tensor; no parameter adjoint. Forwards the step callbacks
    of the counting wrapper, so backward steps are counted like the adjoint's."""

    def __init__(self, field: Any, shape: torch.Size) -> None:
        self.field = field
        self.shape = shape
        self.size = math.prod(shape)
        for name in ("callback_step", "callback_reject_step"):
            if hasattr(field, name):
                setattr(self, name, getattr(field, name))

    def split(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return state[..., : self.size].reshape(*state.shape[:-1], *self.shape), \
            state[..., self.size :].reshape(*state.shape[:-1], *self.shape)

    def __call__(self, t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        y, a = self.split(state)
        with torch.enable_grad():
            y = y.detach().requires_grad_(True)
            f = self.field(t, y)
            (vjp,) = torch.autograd.grad(f, y, -a, allow_unused=True)
        if vjp is None:
            vjp = torch.zeros_like(a)
        return torch.cat([f.detach().reshape(-1), vjp.reshape(-1)])


class GaussLegendreAdjoint(OwnBackwardMethod):
    """GQ adjoint: [y, a] solved backwards; the parameter gradient by Gauss–Legendre quadrature per interval.

    Settings (conf/method/gq.yaml):
      gtol          the paper's C: more nodes as it grows (nodes ~ gtol * forward NFE * interval / span)
      min_nodes     floor on the nodes per interval (1 = the paper's rule alone); see the module docstring
      max_nodes     most nodes in one Gauss–Legendre panel (the authors' code caps the count at 64); an interval
                    that needs more is split into equal panels (composite rule)
      adjoint_rtol/atol  the backward solve's tolerances (null: the forward solve's times `adjoint_tol_factor`)
      adjoint_tol_factor the [y, a] solve's tolerances relative to the forward's when adjoint_rtol/atol are null
                    (default 0.1; 1 = the forward's, as the authors' code); see the module docstring
      warm_start    each backward solve starts with the step the previous one ended with (solvers.core.WarmStart)
      batch_nodes   evaluate the integrand at all nodes of an interval in one vmapped call (True), or one call per
                    node (False); fields vmap cannot handle (e.g. ones calling autograd inside) fall back to one
                    call per node, still with a single backward pass over them
    """

    name = "gq"

    def __init__(
        self,
        solver: SolverSpec,
        norm: str = "default",
        gtol: float = 0.2,
        min_nodes: int = 3,
        max_nodes: int = 64,
        adjoint_rtol: float | None = None,
        adjoint_atol: float | None = None,
        adjoint_tol_factor: float = 0.1,
        batch_nodes: bool = True,
        nodes_per_call: int = 64,
        warm_start: bool = True,
    ) -> None:
        super().__init__(solver, norm, warm_start)
        if not (isinstance(gtol, (int, float)) and gtol > 0):
            raise ValueError(f"method.gtol must be a positive number, got {gtol!r}")
        if not (isinstance(min_nodes, int) and isinstance(max_nodes, int) and 1 <= min_nodes <= max_nodes):
            raise ValueError("method.min_nodes and method.max_nodes must be integers with 1 <= min_nodes <= max_nodes, "
                             f"got {min_nodes!r} and {max_nodes!r}")
        self.gtol, self.min_nodes, self.max_nodes = float(gtol), min_nodes, max_nodes
        if not (isinstance(adjoint_tol_factor, (int, float)) and 0 < adjoint_tol_factor <= 1):
            raise ValueError(f"method.adjoint_tol_factor must be a number in (0, 1], got {adjoint_tol_factor!r}")
        self.adjoint_tol_factor = float(adjoint_tol_factor)
        rtol, atol = backward_tolerances(solver, adjoint_rtol, adjoint_atol)
        if solver.adaptive:
            rtol = rtol if adjoint_rtol is not None else rtol * self.adjoint_tol_factor
            atol = atol if adjoint_atol is not None else atol * self.adjoint_tol_factor
        self.adjoint_rtol, self.adjoint_atol = rtol, atol
        if not (isinstance(nodes_per_call, int) and nodes_per_call >= 1):
            raise ValueError(f"method.nodes_per_call must be a positive integer, got {nodes_per_call!r}")
        self.batch_nodes = batch_nodes
        self.nodes_per_call = nodes_per_call
        self._vmap_fails: set[int] = set()  # ids of fields vmap could not run (fall back to a loop)
        self.last_nodes: list[int] = []  # nodes per interval of the latest backward pass (for tests and records)

    # the backward pass
    def _adjoint_kwargs(self, dynamics: _AugmentedDynamics) -> dict[str, Any]:
        kwargs = self.solver.odeint_kwargs()
        if self.solver.adaptive:
            norm = get_norm(self.norm)

            def split_norm(state: torch.Tensor) -> torch.Tensor:
                y, a = dynamics.split(state)
                return norm((state.new_zeros(()), y, a))

            kwargs["options"] = {**kwargs["options"], "norm": split_norm}
            kwargs.update(rtol=self.adjoint_rtol, atol=self.adjoint_atol)
        return kwargs

    def backward_pass(self, field: Any, ts: torch.Tensor, ys: torch.Tensor, grad_ys: torch.Tensor,
                      params: Sequence[torch.Tensor], time_grad: bool, forward: ForwardSolve):
        """[y, a] solved back over each interval (starting warm from the forward solve's last step when
        `warm_start` is on), then the quadrature with the node rule's count from the forward solve's NFE."""
        dynamics = _AugmentedDynamics(field, ys.shape[1:])
        warm_start, fwd_nfe = forward.warm_start, forward.nfe
        watched = warm_start.watch(dynamics)
        kwargs = self._adjoint_kwargs(dynamics)
        gathered: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        grad_ts = torch.zeros_like(ts) if time_grad else None
        a = grad_ys[-1].clone()
        span = float(ts[-1] - ts[0])
        self.last_nodes = []
        for i in range(len(ts) - 1, 0, -1):
            t1, t0 = ts[i], ts[i - 1]
            if time_grad:
                grad_ts[i] = (grad_ys[i] * field(t1, ys[i])).sum()
            counts = node_counts(self.gtol, fwd_nfe, float(t1 - t0), span, self.min_nodes, self.max_nodes)
            self.last_nodes.append(sum(counts))
            nodes, weights = gauss_legendre(counts, t0, t1)
            times = torch.cat([t1[None], nodes, t0[None]])
            state = torch.cat([ys[i].reshape(-1), a.reshape(-1)])
            first_step = warm_start.first_step(float(t1 - t0))
            if first_step is not None:  # the step the previous solve ended with (the forward's, first)
                kwargs["options"]["first_step"] = first_step
            if self.solver.adaptive:  # end a step exactly at t0 instead of stepping past it and interpolating
                kwargs["options"]["step_t"] = t0.reshape(1)
            solution = torchdiffeq.odeint(watched, state, times, **kwargs)
            gathered.append((nodes, weights, *dynamics.split(solution[1:-1])))
            a = dynamics.split(solution[-1])[1] + grad_ys[i - 1]
        if time_grad:
            grad_ts[0] = -((a - grad_ys[0]) * field(ts[0], ys[0])).sum()
        param_grads = self._quadrature(field, [torch.cat(parts) for parts in zip(*gathered)], params)
        return a, grad_ts, param_grads

    def _quadrature(self, field: Any, gathered: Sequence[torch.Tensor], params: Sequence[torch.Tensor]):
        """sum_k w_k a_k^T df/dtheta(tau_k, y_k) over the nodes of every interval: the integrand at up to
        `nodes_per_call` nodes in one vmapped call, then one backward pass per call."""
        grads = [torch.zeros_like(p) for p in params]
        if not params:
            return grads
        nodes, weights, y_nodes, a_nodes = gathered
        weighted = a_nodes * weights.reshape(-1, *([1] * (a_nodes.dim() - 1)))
        counter = counter_of(field)
        if counter is not None:  # the nodes' evaluations, made below on the unwrapped module in batched calls
            counter.add_evaluations(len(nodes))
        raw = unwrap(field)
        for chunk in range(0, len(nodes), self.nodes_per_call):
            part = slice(chunk, chunk + self.nodes_per_call)
            for g, dg in zip(grads, self._integrand_vjp(raw, nodes[part], y_nodes[part], weighted[part], params)):
                if dg is not None:
                    g.add_(dg)
        return grads

    def _integrand_vjp(self, raw: Any, nodes: torch.Tensor, y_nodes: torch.Tensor, weighted: torch.Tensor,
                       params: Sequence[torch.Tensor]):
        with torch.enable_grad():
            if self.batch_nodes and id(raw) not in self._vmap_fails:
                try:
                    out = torch.func.vmap(raw)(nodes, y_nodes)
                except Exception:  # noqa: BLE001 - any field vmap cannot trace runs node by node instead
                    self._vmap_fails.add(id(raw))
                else:
                    return torch.autograd.grad(out, params, weighted, allow_unused=True)
            outs = [raw(t, y) for t, y in zip(nodes, y_nodes)]
            return torch.autograd.grad(outs, params, list(weighted), allow_unused=True)

    def describe(self) -> dict[str, Any]:
        extra = {"gtol": self.gtol, "min_nodes": self.min_nodes, "max_nodes": self.max_nodes,
                 "adjoint_tol_factor": self.adjoint_tol_factor,
                 "warm_start": self.warm_start, "batch_nodes": self.batch_nodes}
        if self.solver.adaptive:
            extra.update(adjoint_rtol=self.adjoint_rtol, adjoint_atol=self.adjoint_atol)
        return extra
