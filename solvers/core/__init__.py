"""The stepping core: what every method that steps the tableaus itself is built from.

The counterpart of torchdiffeq's `rk_common.py` and diffrax's `_step_size_controller/`. A method file brings its own
mathematics (its `Stepper`, its backward pass) and takes the rest from here:

- `terms`       ODETerm, SDETerm (one stage's increment), rk_increment (one base step of a tableau),
                brownian_increment
- `grids`       Grid, OutputCollector, OutputGradients, check_times, fixed_grid: where steps and outputs fall, and
                how output gradients enter a backward pass
- `controller`  StepController (an RMS or any given error norm), WarmStart (a restarted solve begins with the step
                the previous one ended with) and the adaptive step loop (raises `solvers.errors.SolverFailed` where a
                solve cannot go on)
- `stepping`    Schedule, the `Stepper` protocol, `integrate` (the one loop, fixed or adaptive), PlainStepper
- `autodiff`    vjp and accumulate: local VJPs and fused parameter-gradient sums for the backward passes
- `compiled`    the compiled core (`method.compile=true`): Compiler (compiled loops over a fixed grid, compiled single
                steps, compile time kept apart), FunctionalField, CompiledPlainSteps

Steps are reported to the field's `callback_step` / `callback_reject_step` (`solvers.nfe.report_step`), exactly as
torchdiffeq reports its own, so the NFE counter counts them alike.
"""

from solvers.core.autodiff import accumulate, vjp
from solvers.core.controller import StepController, WarmStart, adaptive_steps, rms_norm
from solvers.core.grids import Grid, OutputCollector, OutputGradients, check_times, fixed_grid, output_gradient
from solvers.core.stepping import PlainStepper, Schedule, Stepper, integrate
from solvers.core.terms import ODETerm, SDETerm, Term, brownian_increment, rk_increment

__all__ = [
    "Grid", "ODETerm", "OutputCollector", "OutputGradients", "PlainStepper", "SDETerm", "Schedule", "StepController",
    "Stepper", "Term", "WarmStart", "accumulate", "adaptive_steps", "brownian_increment", "check_times",
    "fixed_grid", "integrate", "output_gradient", "rk_increment", "rms_norm", "vjp",
]
