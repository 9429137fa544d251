"""Run equinox's checkpointed while loop (what diffrax's RecursiveCheckpointAdjoint runs) under jax.grad and record
the step index of every body evaluation: the forward pass (0 .. n-1), then the backward pass (recomputations and
U-turns). Prints JSON: per "n,c", the backward evaluations, recomputations (= evaluations - n) and, for n <= 40,
the backward trace.
Usage (outside the project, e.g. a throw-away venv with `pip install jax equinox`; run with jax 0.10.2,
equinox 0.13.8): python tests/reference/equinox_checkpoint_trace.py C1,C2,.. N1,N2,.."""
import json
import sys

import equinox.internal as eqxi
import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)

def trace(n, c):
    calls = []
    def body(val):
        k, x = val
        jax.debug.callback(lambda k: calls.append(int(k)), k, ordered=False)
        return k + 1, jnp.sin(x) * 1.01
    def loss(x0):
        return eqxi.while_loop(lambda v: v[0] < n, body, (jnp.asarray(0), x0), kind="checkpointed",
                               checkpoints=c)[1]
    jax.grad(loss)(jnp.asarray(0.3))
    jax.effects_barrier()
    return calls

out = {}
for c in map(int, sys.argv[1].split(",")):
    for n in map(int, sys.argv[2].split(",")):
        calls = trace(n, c)
        fwd, bwd = calls[:n], calls[n:]
        assert fwd == list(range(n)), (n, c, fwd[:10])
        out[f"{n},{c}"] = {"backward_evaluations": len(bwd), "recomputations": len(bwd) - n}
        if n <= 40:
            out[f"{n},{c}"]["trace"] = bwd
print(json.dumps(out))
