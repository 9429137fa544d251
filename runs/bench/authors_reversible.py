"""The authors' JAX reversible solver (github sammccallum/reversible, package `reversible`) on the bench's runtime
problem, as a subprocess of `python -m runs.bench --section reversible` (imports jax and their package, never torch,
so it runs in whichever Python has them: the project's venv with the `authors` extra and their checkout on a .pth
path, or an outside venv named by FASTGRAD_AUTHORS_PYTHON).

Protocol (JSON lines): the first stdin line gives the field's weights (W1, b1, W2, b2 as nested lists), y0, dt and
lambda; then each line {"steps": n} asks for one timed gradient of loss = sum(y_n^2) at n steps, answered with
{"steps": n, "seconds": s, "compile_seconds": c (first request at this n, else 0), "grad": [...]} (the gradient
flattened as W1, b1, W2, b2, y0, the order of the bench's torch field); {"roundoff": n} asks how far their
reversible gradient is from JAX's autodiff through the same pair scheme at n steps ({"roundoff": n, "error": e}). Their solver runs N = int(T / h) steps,
so T = (n + 1/2) h makes N = n whatever the rounding of n h / h. One XLA thread (set before jax is imported).
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
# run as a script, this folder would come first on sys.path, and its reversible.py would shadow their package
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]


def main() -> int:
    import equinox as eqx  # noqa: PLC0415 - optional: only where the authors' code is installed
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    from reversible.reversible_solver import Reversible  # noqa: PLC0415
    from reversible.solver_step import Midpoint  # noqa: PLC0415
    from reversible.vector_field import AbstractVectorField  # noqa: PLC0415

    jax.config.update("jax_enable_x64", True)
    setup = json.loads(sys.stdin.readline())

    class Field(AbstractVectorField):  # the authors' example field (reversible/example.py), our weights
        w1: jax.Array
        b1: jax.Array
        w2: jax.Array
        b2: jax.Array

        def __call__(self, t, y):
            return self.w2 @ jnp.tanh(self.w1 @ y + self.b1) + self.b2

    weights = setup["weights"]
    field = Field(*(jnp.asarray(weights[k], dtype=jnp.float64) for k in ("W1", "b1", "W2", "b2")))
    y0 = jnp.asarray([setup["y0"]], dtype=jnp.float64)
    dt, solver = setup["dt"], Reversible(l=setup["coupling"], solver=Midpoint())
    compiled: dict[int, object] = {}
    def roundoff(steps: int) -> float:
        """Their reversible gradient against jax.grad through a plain loop of the same (y, z) pair scheme (their
        forward step, differentiated by JAX's autodiff): ||g_rev - g_autodiff|| / ||g_autodiff||."""
        t_end, lam, step = (steps + 0.5) * dt, setup["coupling"], Midpoint().step

        def reversible(args):
            return jnp.sum(solver.solve_forward(args[0], args[1], dt, t_end) ** 2)

        def autodiff(args):
            vf, y = args

            def body(i, carry):
                t0, y0, z0 = carry
                y1 = lam * y0 + (1 - lam) * z0 + step(vf, dt, t0, z0)
                return t0 + dt, y1, z0 - step(vf, -dt, t0 + dt, y1)

            return jnp.sum(jax.lax.fori_loop(0, steps, body, (jnp.zeros(1), y, y))[1] ** 2)

        flat = [jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree_util.tree_leaves(eqx.filter_jit(
            eqx.filter_grad(fn))((field, y0)))]) for fn in (reversible, autodiff)]
        return float(jnp.linalg.norm(flat[0] - flat[1]) / jnp.linalg.norm(flat[1]))

    for line in sys.stdin:
        request = json.loads(line)
        if "roundoff" in request:
            print(json.dumps({"roundoff": request["roundoff"], "error": roundoff(request["roundoff"])}), flush=True)
            continue
        steps = request["steps"]
        compile_seconds = 0.0
        if steps not in compiled:
            t_end = (steps + 0.5) * dt

            def loss(args, t_end=t_end):
                vf, y = args
                return jnp.sum(solver.solve_forward(vf, y, dt, t_end) ** 2)

            compiled[steps] = eqx.filter_jit(eqx.filter_grad(loss))
            start = time.perf_counter()
            jax.block_until_ready(compiled[steps]((field, y0)))
            compile_seconds = time.perf_counter() - start
        start = time.perf_counter()
        g_field, g_y0 = jax.block_until_ready(compiled[steps]((field, y0)))
        seconds = time.perf_counter() - start
        flat = [float(v) for leaf in (g_field.w1, g_field.b1, g_field.w2, g_field.b2, g_y0) for v in jnp.ravel(leaf)]
        print(json.dumps({"steps": steps, "seconds": seconds, "compile_seconds": compile_seconds, "grad": flat}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
