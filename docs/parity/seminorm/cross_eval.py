"""Cross-check: load a model trained by this harness into the authors' NeuralCDE (FasterNeuralDiffEq, torchdiffeq
0.1.1, torchcde 0.1.0; their venv) and run their _evaluate_metrics on the same data, to see whether a difference in
backward NFE comes from the solver library (the same model and data under both) or from training.
usage (authors' venv): python cross_eval.py CHECKPOINT.pt {default,seminorm} [key: model|best]"""
import os, sys, pathlib, types, json
os.environ.setdefault('OMP_NUM_THREADS', '1')
import torch
torch.set_num_threads(1)
CODE = pathlib.Path(__file__).resolve().parent / 'code'  # the authors' code, unmodified, beside this file
sys.path.insert(0, str(CODE))
pkg = types.ModuleType('datasets'); pkg.__path__ = [str(CODE / 'datasets')]; sys.modules['datasets'] = pkg
from datasets import time_series  # noqa
import models  # noqa
from train import train as train  # noqa

ckpt, norm = sys.argv[1], sys.argv[2]
key = sys.argv[3] if len(sys.argv) > 3 else 'model'
state = torch.load(ckpt, map_location='cpu', weights_only=False)
ours = state['model'] if key == 'model' else state['passes']['best_model']
mapping = {'field.matrix_field.hidden.0': 'func.linear_in', 'field.matrix_field.hidden.1': 'func.linears.0',
           'field.matrix_field.hidden.2': 'func.linears.1', 'field.matrix_field.hidden.3': 'func.linears.2',
           'field.matrix_field.out': 'func.linear_out', 'initial': 'initial', 'readout': 'readout'}
theirs = {}
for k, v in ours.items():
    prefix, leaf = k.rsplit('.', 1)
    theirs[f'{mapping[prefix]}.{leaf}'] = v
times, train_dl, val_dl, test_dl, cin, cout = time_series.process_data('japanese_vowels', 1024, lambda: None, None)
model = models.NeuralCDE(times, cin, 90, 40, 4, cout, norm == 'seminorm', 1e-3, 1e-6)
missing = model.load_state_dict(theirs, strict=False)
assert not missing.unexpected_keys and set(missing.missing_keys) <= {'times'}, missing
out = {}
for split, dl in (('train', train_dl), ('val', val_dl), ('test', test_dl)):
    m = train._evaluate_metrics(dl, model, 'cpu')
    out[split] = {'loss': m.loss, 'accuracy': m.accuracy, 'fwd': m.forward_nfe, 'bwd': m.backward_nfe}
print(json.dumps(out))
