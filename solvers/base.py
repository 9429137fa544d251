"""The interface every gradient method implements, and the solver settings it is given.

*How a step is taken* (`SolverSpec`: a solver name, tolerances or a step size) and *how the gradient is computed*
(`GradientMethod`: direct backprop, adjoint, GQ, reversible, ...) are independent axes, as in diffrax: a method
never hard-codes a solver. A task only ever calls `method.solve(field, y0, ts)` (or `solve_sde`).

To add a method: subclass `GradientMethod` in a new file of this package, implement `_solve` (and `_solve_sde`
if it handles SDEs), then add `conf/method/<name>.yaml` with `_target_` naming the class. A method that steps the
tableaus itself subclasses `SteppingMethod` instead and implements `_run` (the stepping core, solvers/core/, does
the rest). A method with a backward pass of its own after torchdiffeq's forward solve (GQ, the core adjoint)
subclasses `OwnBackwardMethod` and implements `backward_pass`. The helpers several methods share live here too:
`trainable`, `backward_tolerances`, `check_stratonovich`.
"""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torchdiffeq
from torch import nn

from solvers.core import ODETerm, PlainStepper, Schedule, SDETerm, Stepper, Term, WarmStart
from solvers.core.compiled import Compiler
from solvers.core.grids import UniformGrid
from solvers.nfe import NFECounter, counter_of
from solvers.norms import NORMS
from solvers.registry import TORCHDIFFEQ_SOLVERS, SolverEntry, solver_entry
from solvers.tableaus import ALIASES, TABLEAUS, Tableau, get_tableau, has_tableau

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SolverSpec:
    """How one solve steps: a solver name and either tolerances (adaptive) or a step size (fixed).

    Names are those of `solvers.registry`: torchdiffeq's solvers and the tableaus of solvers/tableaus.py (e.g.
    ralston3, tsit5, heun), the latter only for methods that step themselves. A tableau with embedded weights
    (dopri5, bosh3, tsit5, heun) takes adaptive steps unless `step_size` is set; a fixed step of an adaptive
    torchdiffeq solver is again only for methods that step themselves (`GradientMethod.steps_itself`).
    """

    name: str
    rtol: float | None = None
    atol: float | None = None
    step_size: float | None = None
    max_num_steps: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        solver_entry(self.name)  # a ValueError naming the choices
        if self.adaptive:
            for key in ("rtol", "atol"):
                value = getattr(self, key)
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not (0 < value < 1):
                    raise ValueError(
                        f"solver.{key} must be a number in (0, 1) for the adaptive solver {self.name}, "
                        f"got {value!r}"
                    )
        elif self.step_size is not None and not (
            isinstance(self.step_size, (int, float)) and math.isfinite(self.step_size) and self.step_size > 0
        ):
            raise ValueError(f"solver.step_size must be a positive number, got {self.step_size!r}")
        if self.max_num_steps is not None and (not isinstance(self.max_num_steps, int) or self.max_num_steps < 1):
            raise ValueError(f"solver.max_num_steps must be a positive integer, got {self.max_num_steps!r}")

    @property
    def entry(self) -> SolverEntry:
        """What the solver registry knows of this name (how torchdiffeq steps it, its tableau)."""
        return solver_entry(self.name)

    @property
    def adaptive(self) -> bool:
        """Adaptive steps: a torchdiffeq adaptive solver (a `step_size` makes one with a tableau fixed-step, for
        methods that step themselves), or a tableau-only scheme with embedded weights and no `step_size`."""
        entry = self.entry
        if entry.torchdiffeq is None:
            return entry.tableau.embedded and self.step_size is None
        return entry.torchdiffeq_adaptive and (self.step_size is None or entry.tableau is None)

    @property
    def torchdiffeq(self) -> bool:
        """Whether torchdiffeq can take these steps (its solver, and no fixed step forced on an adaptive one)."""
        entry = self.entry
        return entry.torchdiffeq is not None and (not entry.torchdiffeq_adaptive or self.adaptive)

    def odeint_kwargs(self, jump_t: torch.Tensor | None = None) -> dict[str, Any]:
        """Keyword arguments for torchdiffeq.odeint / odeint_adjoint; `jump_t` (times where the field is
        discontinuous) goes into the options when given."""
        options = dict(self.options)
        if jump_t is not None:
            options["jump_t"] = jump_t
        if self.adaptive:
            if self.max_num_steps is not None:
                options["max_num_steps"] = self.max_num_steps
            return {"method": self.name, "rtol": self.rtol, "atol": self.atol, "options": options}
        if self.step_size is not None:  # steps by index, so n steps of (t1 - t0) / n are n steps (see UniformGrid)
            options["grid_constructor"] = UniformGrid(self.step_size)
        # torchdiffeq's fixed-grid solvers ignore tolerances; pass harmless values.
        return {"method": self.name, "rtol": 1e-7, "atol": 1e-9, "options": options}


class GradientMethod(abc.ABC):
    """A differentiable solve and the way its gradient is computed.

    Class attributes a method declares:
      name            - the config name (`method=<name>`)
      backward_solve  - True when the backward pass is itself an adaptive solve that a norm can steer; norms
                        other than `default` are only meaningful (and only allowed) for such methods.
      supports_jump_t - True when `_solve` accepts the keyword `jump_t` (see `solve`).
      steps_itself    - True for methods that step the tableaus of solvers/tableaus.py themselves (the stepping core,
                        solvers/core/) rather than through torchdiffeq (see `SteppingMethod`); decides which
                        `solver=` names the method accepts.
      own_scheme      - for a method whose scheme is its own whatever `solver=` says (e.g. MALI's asynchronous
                        leapfrog): the scheme's name; such a method takes fixed steps and reads only the step size.
    """

    name: ClassVar[str]
    backward_solve: ClassVar[bool] = False
    steps_itself: ClassVar[bool] = False
    supports_jump_t: ClassVar[bool] = False
    own_scheme: ClassVar[str | None] = None
    _warned_jump_t: bool = False

    def __init__(self, solver: SolverSpec, norm: str = "default") -> None:
        if norm not in NORMS:
            raise ValueError(f"norm={norm!r} is not a norm; choose one of {', '.join(NORMS)}")
        if norm != "default":
            if not self.backward_solve:
                raise ValueError(
                    f"norm={norm} steers the step size of a backward solve, and method={self.name} has none; "
                    f"use norm=default, or a method with a backward solve (e.g. method=adjoint)"
                )
            if not solver.adaptive:
                raise ValueError(
                    f"norm={norm} steers an adaptive step size, and solver={solver.name} takes fixed steps; "
                    f"use norm=default, or an adaptive solver (e.g. solver=dopri5)"
                )
        self.check_solver(solver)
        self.solver = solver
        self.norm = norm
        self.nfe = NFECounter()

    def check_solver(self, solver: SolverSpec) -> None:
        """Fail, in one sentence, on a solver this method cannot step."""
        own = "methods that step the tableaus themselves (e.g. method=reversible, checkpoint, direct_rk)"
        if self.own_scheme is not None:
            if solver.adaptive or solver.step_size is None:
                raise ValueError(f"method={self.name} takes fixed steps; set solver.step_size (solver={solver.name} "
                                 f"gives only the step size, the scheme is always {self.own_scheme})")
        elif self.steps_itself:
            if not has_tableau(solver.name):
                raise ValueError(
                    f"solver={solver.name} has no Butcher tableau in solvers/tableaus.py, and method={self.name} "
                    f"steps those itself; choose one of {', '.join((*TABLEAUS, *ALIASES))}"
                )
        elif solver.entry.torchdiffeq is None:
            raise ValueError(
                f"solver={solver.name} is not a torchdiffeq solver, and method={self.name} solves through "
                f"torchdiffeq; use one of {', '.join(TORCHDIFFEQ_SOLVERS)}, or one of the {own}"
            )
        elif not solver.torchdiffeq:
            raise ValueError(
                f"solver={solver.name} with a fixed solver.step_size is not something torchdiffeq does, and "
                f"method={self.name} solves through torchdiffeq; drop solver.step_size, or use one of the {own}"
            )

    def solve(self, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor,
              jump_t: torch.Tensor | None = None) -> torch.Tensor:
        """Solve dy/dt = field(t, y) from y0, returning y at every time of `ts` (shape (len(ts), *y0.shape)).

        `jump_t` (optional): times where the field is discontinuous, e.g. the knots of a neural CDE's linear
        interpolation. An adaptive solver then ends a step exactly at each and restarts there (torchdiffeq's
        `jump_t` option; the seminorm paper's code did this with torchdiffeq 0.1's `grid_points`), forward and in an
        adjoint's backward solve. Methods that set `supports_jump_t` pass it on; the others, and fixed-step solvers,
        solve without it (logged once). Omitted or None: the behaviour of a plain `solve(field, y0, ts)`.
        """
        counted = self.nfe.wrap(field, self.solver.adaptive)
        if jump_t is None:
            return self._solve(counted, y0, ts)
        if not (self.supports_jump_t and self.solver.adaptive):
            if not self._warned_jump_t:
                log.warning("method=%s with solver=%s does not use jump_t; solving without it", self.name,
                            self.solver.name)
                self._warned_jump_t = True
            return self._solve(counted, y0, ts)
        return self._solve(counted, y0, ts, jump_t=jump_t)

    def solve_sde(self, sde: nn.Module, y0: torch.Tensor, ts: torch.Tensor, bm: Any) -> torch.Tensor:
        """Solve a torchsde SDE (drift `f`, diffusion `g`) driven by the Brownian object `bm`."""
        return self._solve_sde(self.nfe.wrap_sde(sde), y0, ts, bm)

    @abc.abstractmethod
    def _solve(self, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor) -> torch.Tensor: ...

    def _solve_sde(self, sde: nn.Module, y0: torch.Tensor, ts: torch.Tensor, bm: Any) -> torch.Tensor:
        raise ValueError(f"method={self.name} does not solve SDEs")

    def describe(self) -> dict[str, Any]:
        """What the run record says about this method beyond its name (e.g. the backward tolerances)."""
        return {}


# --------------------------------------------------------------------------------------------------------------
# Helpers shared by several methods


def trainable(module: Any) -> tuple[torch.Tensor, ...]:
    """The parameters a gradient is taken for: those of `module` (a field, counted or not) that require grad."""
    return tuple(p for p in module.parameters() if p.requires_grad)


def backward_tolerances(solver: SolverSpec, rtol: float | None, atol: float | None) -> tuple[Any, Any]:
    """The backward solve's (rtol, atol) from `method.adjoint_rtol` / `method.adjoint_atol`: each a number in (0, 1),
    or None for the forward solve's own."""
    for key, value in (("adjoint_rtol", rtol), ("adjoint_atol", atol)):
        if value is not None and not (isinstance(value, (int, float)) and 0 < value < 1):
            raise ValueError(f"method.{key} must be a number in (0, 1) or null, got {value!r}")
    return (rtol if rtol is not None else solver.rtol, atol if atol is not None else solver.atol)


def check_stratonovich(method: GradientMethod, sde: Any, tableau: Tableau) -> None:
    """The RK-as-SDE-step converges to the Stratonovich solution only for schemes of order >= 2, with fixed steps."""
    if getattr(sde, "sde_type", "stratonovich") != "stratonovich":
        raise ValueError(f"method={method.name} solves Stratonovich SDEs; this SDE has sde_type={sde.sde_type}")
    if tableau.order < 2:
        raise ValueError(f"solver={tableau.name} converges to the Ito solution of an SDE; method={method.name} needs a "
                         "Stratonovich scheme (a tableau of order >= 2, e.g. solver=midpoint or heun)")
    if method.solver.adaptive:
        raise ValueError(f"method={method.name} solves SDEs with fixed steps; set solver.step_size")


class SteppingMethod(GradientMethod):
    """A method that steps the tableau `solver=` names itself, with the stepping core (solvers/core/), for ODEs and
    Stratonovich SDEs alike. A subclass says how it differentiates the solve (`_run`) and, when its scheme is not
    the base scheme y + Psi_h(t, y), which stepper it steps (`_stepper`)."""

    steps_itself = True

    def __init__(self, solver: SolverSpec, norm: str = "default", compile: bool = False) -> None:
        super().__init__(solver, norm)
        if not isinstance(compile, bool):
            raise ValueError(f"method.compile must be true or false, got {compile!r}")
        self.tableau = get_tableau(solver.name)
        # `method.compile=true`: the fixed-grid ODE steps run as compiled loops (solvers/core/compiled.py)
        self.compiler = Compiler() if compile else None

    def describe(self) -> dict[str, Any]:
        """The compile switch and, when on, `compile_stats` (compile seconds and compiled functions: a dict the
        compiler fills as it compiles, so the run record written at the end holds the totals)."""
        if self.compiler is None:
            return {"compile": False}
        return {"compile": True, "compile_stats": self.compiler.stats}

    def compiler_for(self, bm: Any = None) -> Compiler | None:
        """The compiler for a solve: ODEs on a fixed grid (SDEs and adaptive steps run eagerly)."""
        return None if bm is not None or self.solver.adaptive else self.compiler

    def stepper(self, field: nn.Module) -> Stepper:
        """The stepper `solve(field, ...)` steps, on the field counted by this method's counter just as `solve`
        counts it: the per-step pieces a solve is made of, for cost models that time single steps (runs.bench's
        reversible section). Steps taken with it outside a solve are reported with `solvers.nfe.report_step`."""
        counted = self.nfe.wrap(field, self.solver.adaptive)
        return self._stepper(ODETerm(counted), counted)

    def _stepper(self, term: Term, field: Any, bm: Any = None) -> Stepper:
        """The base scheme's stepper; `field` is the counted field or SDE (it takes the step callbacks)."""
        return PlainStepper(term, self.tableau, bm=bm, field=field, compiler=self.compiler_for(bm))

    @abc.abstractmethod
    def _run(self, stepper: Stepper, schedule: Schedule, y0: torch.Tensor) -> torch.Tensor:
        """The differentiable solve: y at every output time of `schedule`, stacked."""

    def _solve(self, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        return self._run(self._stepper(ODETerm(field), field), Schedule.build(self.solver, self.tableau, ts), y0)

    def _solve_sde(self, sde: nn.Module, y0: torch.Tensor, ts: torch.Tensor, bm: Any) -> torch.Tensor:
        check_stratonovich(self, sde, self.tableau)
        return self._run(self._stepper(SDETerm(sde), sde, bm), Schedule.build(self.solver, self.tableau, ts), y0)


@dataclass
class ForwardSolve:
    """What a method's own backward pass knows of the forward solve: the `WarmStart` its backward solve begins from
    (the forward solve's last step, when the method's `warm_start` is on and the solver adaptive) and the forward
    solve's field evaluations (`nfe`; 0 for a field nobody counts)."""

    warm_start: WarmStart
    nfe: int


class OwnBackwardMethod(GradientMethod):
    """A method that solves forward with torchdiffeq (no graph kept) and computes the gradient with a backward pass of
    its own (`backward_pass`), e.g. one that solves an adjoint system backwards over each interval between output
    times. `warm_start` (the knob `method.warm_start`): whether that backward solve starts with the step the previous
    solve ended with (solvers.core.WarmStart)."""

    backward_solve = True

    def __init__(self, solver: SolverSpec, norm: str = "default", warm_start: bool = True) -> None:
        super().__init__(solver, norm)
        if not isinstance(warm_start, bool):
            raise ValueError(f"method.warm_start must be true or false, got {warm_start!r}")
        self.warm_start = warm_start

    def _solve(self, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        return _OwnBackward.apply(self, field, y0, ts, *trainable(field))

    @abc.abstractmethod
    def backward_pass(self, field: Any, ts: torch.Tensor, ys: torch.Tensor, grad_ys: torch.Tensor,
                      params: tuple[torch.Tensor, ...], time_grad: bool,
                      forward: ForwardSolve) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor]]:
        """(dL/dy0, dL/dts or None when not `time_grad`, dL/dtheta for each of `params`) from the forward solution
        ys at ts and the loss's gradients grad_ys with respect to it."""


class _OwnBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, method: OwnBackwardMethod, field: Any, y0: torch.Tensor, ts: torch.Tensor,
                *params: torch.Tensor) -> torch.Tensor:
        counter = counter_of(field)
        before = counter.counts.fwd_nfe if counter is not None else 0
        start = WarmStart(method.warm_start and method.solver.adaptive)
        ys = torchdiffeq.odeint(start.watch(field), y0, ts, **method.solver.odeint_kwargs())
        ctx.forward_solve = ForwardSolve(start, (counter.counts.fwd_nfe - before) if counter is not None else 0)
        ctx.method, ctx.field = method, field
        ctx.save_for_backward(ts, ys, *params)
        return ys

    @staticmethod
    @torch.no_grad()
    def backward(ctx, grad_ys: torch.Tensor):
        ts, ys, *params = ctx.saved_tensors
        grad_y0, grad_ts, param_grads = ctx.method.backward_pass(ctx.field, ts, ys, grad_ys, tuple(params),
                                                                 ctx.needs_input_grad[3], ctx.forward_solve)
        return (None, None, grad_y0, grad_ts, *param_grads)
