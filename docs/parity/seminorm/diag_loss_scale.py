"""Diagnostic (not part of the measurement): why the train-set passes show ~no seminorm saving while the val/test
passes show ~30-45%. Trains the authors' model (default norm, seed 0) for 51 epochs with their train.main, exactly as
run_authors_jv.py does, then measures one backward pass with the default and with the seminorm on the train set and on
the val set, with the loss multiplied by a constant c (which scales a_y and the parameter adjoints by c, leaving the
state y untouched)."""
import sys; sys.argv = [sys.argv[0]]
import torch, run_authors_jv as r
from datasets import time_series
import models, train
torch.manual_seed(0)
times, tr, va, te, cin, cout = time_series.process_data(r.NAME, 1024, r._download, r._process_data)
m = models.NeuralCDE(times, cin, 90, 40, 4, cout, False, 1e-3, 1e-6)
train.main('diag', tr, va, te, 'cpu', m, False, 51, 1.6e-3, 0.01)
for split, dl in (('train', tr), ('val', va)):
    coeffs, y = dl.dataset.tensors
    for norm in (False, True):
        m.norm = norm
        out = []
        for c in (1e-2, 1.0, 1e2, 1e4):
            m.zero_grad(); m.reset_nfe_ts()
            loss, _ = m(coeffs, y)
            m.reset_nfe_ts(); (c * loss).backward(); out.append((c, m.nfe))
        gn = sum(p.grad.pow(2).sum() for p in m.func.parameters()).sqrt().item() / out[-1][0]
        print(f'{split}: loss {loss.item():.3g}, norm {"seminorm" if norm else "default "}: backward NFE at loss x c: {out}; |grad theta_f| at c=1: {gn:.3g}')
