"""How gradients of neural differential equations are computed: the only package that knows about adjoints.

`GradientMethod` (solvers.base) is the interface, with the helpers methods share; one file per method, holding its
own mathematics and its class; the stepping core every self-stepping method is built from in solvers.core (terms,
grids, step-size controller, the one loop, local VJPs); the `solver=` names in solvers.registry (torchdiffeq's
solver table and solvers.tableaus); norms in solvers.norms; NFE counting in solvers.nfe; typed failures in
solvers.errors. Methods are built from config by `runs.build` through each YAML's `_target_`.
"""

from solvers.base import GradientMethod, SolverSpec
from solvers.nfe import NFECounter, NFECounts
from solvers.norms import NORMS

__all__ = ["GradientMethod", "SolverSpec", "NFECounter", "NFECounts", "NORMS"]
