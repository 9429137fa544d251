"""How gradients of neural differential equations are computed: the only package that knows about adjoints.

`GradientMethod` (solvers.base) is the interface; one file per method; norms in solvers.norms; NFE counting in
solvers.nfe. Methods are built from config by `runs.build` through each YAML's `_target_`.
"""

from solvers.base import GradientMethod, SolverSpec
from solvers.nfe import NFECounter, NFECounts
from solvers.norms import NORMS

__all__ = ["GradientMethod", "SolverSpec", "NFECounter", "NFECounts", "NORMS"]
