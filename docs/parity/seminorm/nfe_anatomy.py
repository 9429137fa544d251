"""Where the floor counts (forward 211, backward 210) come from: one forward+backward of the authors' model at
initialisation (seed 0) on the full JapaneseVowels training set, with the times at which the vector field is called."""
import sys, torch
sys.argv = [sys.argv[0]]
import run_authors_jv as r
from datasets import time_series
import models
torch.manual_seed(0)
times, tr, va, te, cin, cout = time_series.process_data(r.NAME, 1024, r._download, r._process_data)
for norm in (False, True):
    torch.manual_seed(0)
    m = models.NeuralCDE(times, cin, 90, 40, 4, cout, norm, 1e-3, 1e-6)
    coeffs, y = tr.dataset.tensors
    m.reset_nfe_ts(); loss, _ = m(coeffs, y); fts = list(m.ts); fn = m.nfe
    m.reset_nfe_ts(); loss.backward(); bts = list(m.ts); bn = m.nfe
    print('norm', 'seminorm' if norm else 'default', 'forward', fn, 'backward', bn)
    print(' forward t (first 12):', [round(t, 5) for t in fts[:12]])
    print(' backward t (first 12):', [round(t, 5) for t in bts[:12]])
    # calls per unit interval
    import collections, math
    def per_interval(ts):
        c = collections.Counter(min(int(math.floor(t + 1e-4)), 27) if t >= 0 else -1 for t in ts)
        return [c[i] for i in range(28)]
    print(' forward calls per knot interval  [k,k+1):', per_interval(fts[1:]))
    print(' backward calls per knot interval [k,k+1):', per_interval(bts))
