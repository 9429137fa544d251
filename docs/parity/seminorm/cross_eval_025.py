"""cross_eval.py with torchdiffeq 0.2.5 (installed into ./td025, beside this file) in place of 0.1.1 under the authors' own pipeline:
their grid_points become 0.2.5's jump_t (eps dropped: 0.2.5 lands on the knot and perturbs the time), and the default
adjoint norm is 0.1.1's (max of |a_t|, RMS y, RMS a_y, joint RMS of every parameter adjoint) so that only the
library's stepping differs. usage: authors' venv python cross_eval_025.py CHECKPOINT.pt default [model|best]"""
import sys
sys.path.insert(0, __file__.replace("cross_eval_025.py", "td025"))  # pip install --no-deps --target td025 torchdiffeq==0.2.5
import torch
import torchdiffeq
assert torchdiffeq.__version__ == "0.2.5", torchdiffeq.__version__

def rms(x):
    return x.pow(2).mean().sqrt()

def norm_011(aug):
    a_t, y, a_y, *params = aug
    joint = torch.cat([p.reshape(-1) for p in params]) if params else None
    chans = [a_t.abs(), rms(y), rms(a_y)] + ([rms(joint)] if joint is not None else [])
    return max(chans)

_orig = torchdiffeq.odeint_adjoint
def patched(func, y0, t, options=None, adjoint_options=None, **kw):
    def fix(o):
        o = dict(o or {})
        if "grid_points" in o:
            o["jump_t"] = o.pop("grid_points")
        o.pop("eps", None)
        return o
    options, adjoint_options = fix(options), fix(adjoint_options)
    adjoint_options.setdefault("norm", norm_011)
    return _orig(func, y0, t, options=options, adjoint_options=adjoint_options, **kw)
torchdiffeq.odeint_adjoint = patched
exec(open(__file__.replace("cross_eval_025.py", "cross_eval.py")).read())
