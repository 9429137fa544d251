"""Adapter: run the seminorm authors' Neural CDE pipeline (FasterNeuralDiffEq @ 510ca2aa, in ./code, unmodified)
on UEA JapaneseVowels instead of Speech Commands.

What this file does, and nothing else:
  * `_process_data` returns exactly what the authors' `datasets/speech_commands.py::_process_data` returns
    (times, X, y, final_index=None, static=None, output_channels, append_intensity=False), but built from the
    pooled JapaneseVowels series (aeon's TRAIN file followed by its TEST file, 640 series). Variable-length series
    are NaN-padded at the end to the longest length (29); `times = linspace(0, L-1, L)` as in speech_commands.py.
  * It hands that to the authors' `datasets/time_series.py::process_data` (their split, normalisation, time channel,
    torchcde linear interpolation coefficients, DataLoaders), builds their `models.NeuralCDE` and calls their
    `train.main` with the arguments of their `speech_commands.main` (batch 1024 = one full batch here, lr 1.6e-3,
    weight decay 0.01), except max_epochs, which the authors' HEAD sets to 0.
  * It observes (never alters) the run: hooks on the model's forward and on optimizer.step record the NFE of every
    training step (the authors' loop does not record them), and a wrapper around ReduceLROnPlateau.step logs every
    scheduler call. Results are dumped to JSON.

The authors' `datasets/__init__.py` imports gym (acrobot) and torchaudio (Speech Commands); neither is needed, so the
`datasets` package is registered without running its __init__ (an import-time detail; no source is changed).
"""
import argparse
import json
import os
import pathlib
import random
import sys
import time
import types

os.environ.setdefault('OMP_NUM_THREADS', '1')

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

torch.set_num_threads(1)

HERE = pathlib.Path(__file__).resolve().parent
CODE = HERE / 'code'
sys.path.insert(0, str(CODE))
_pkg = types.ModuleType('datasets')
_pkg.__path__ = [str(CODE / 'datasets')]
sys.modules['datasets'] = _pkg

from datasets import time_series  # noqa: E402  (authors' file)
import models  # noqa: E402  (authors' package)
import train  # noqa: E402  (authors' package)

NAME = 'japanese_vowels'


def _download():
    pass  # the data ship with aeon; nothing to download


def _process_data():
    import aeon.datasets
    series, labels = aeon.datasets.load_classification('JapaneseVowels')  # split=None: TRAIN then TEST, pooled
    channels = series[0].shape[0]
    maxlen = max(s.shape[1] for s in series)
    X = torch.full((len(series), maxlen, channels), float('nan'))  # float32, as torch.empty in speech_commands.py
    for i, s in enumerate(series):
        X[i, :s.shape[1]] = torch.tensor(np.asarray(s, dtype=np.float64).T, dtype=torch.float32)
    classes = sorted(set(labels.tolist()), key=int)
    y = torch.tensor([classes.index(label) for label in labels.tolist()], dtype=torch.long)
    times = torch.linspace(0, X.size(1) - 1, X.size(1))  # as speech_commands.py:50
    final_index = None
    static = None
    output_channels = len(classes)
    append_intensity = False
    return times, X, y, final_index, static, output_channels, append_intensity


class Recorder:
    """Per-training-step forward/backward NFE, read from the authors' own counter (model.func.nfe)."""

    def __init__(self, model):
        self.model = model
        self.steps = []
        self.scheduler_calls = []
        self._pre = self._post = None
        self._in_train_forward = False
        self.t_last = time.time()
        model.register_forward_pre_hook(self._fwd_pre)
        model.register_forward_hook(self._fwd_post)
        register_optimizer_step_pre_hook(self._step_pre)
        recorder = self
        orig = torch.optim.lr_scheduler.ReduceLROnPlateau.step

        def step(sched, metrics, *args, **kwargs):
            lr_before = [g['lr'] for g in sched.optimizer.param_groups]
            out = orig(sched, metrics, *args, **kwargs)
            recorder.scheduler_calls.append(dict(after_training_step=len(recorder.steps), metric=float(metrics),
                                                 lr_before=lr_before[0],
                                                 lr_after=sched.optimizer.param_groups[0]['lr'],
                                                 best=float(sched.best), num_bad_epochs=sched.num_bad_epochs))
            return out
        torch.optim.lr_scheduler.ReduceLROnPlateau.step = step

    def _fwd_pre(self, module, inputs):
        self._pre = self.model.nfe

    def _fwd_post(self, module, inputs, output):
        self._post = self.model.nfe
        self._fwd = self._post - self._pre

    def _step_pre(self, optimizer, args, kwargs):
        now = time.time()
        self.steps.append(dict(forward_nfe=self._fwd, backward_nfe=self.model.nfe - self._post,
                               lr=optimizer.param_groups[0]['lr'], seconds_since_last=now - self.t_last))
        self.t_last = now


def _metrics_summary(m):
    keep = {k: v for k, v in m.items() if not k.endswith('_ts')}
    for k in ('forward_accept_ts', 'forward_reject_ts', 'backward_accept_ts', 'backward_reject_ts'):
        keep[k.replace('_ts', '_steps')] = len(m[k])
    return keep


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--norm', choices=['default', 'seminorm'], required=True)
    parser.add_argument('--epochs', type=int, required=True)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--rtol', type=float, default=1e-3)
    parser.add_argument('--atol', type=float, default=1e-6)
    parser.add_argument('--out', required=True)
    args = parser.parse_args()

    # The authors' code sets no seed anywhere; a seed here fixes the model initialisation and DataLoader shuffling.
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    # --- exactly speech_commands.main, with the data function swapped and max_epochs set ---
    device = 'cpu'
    norm = args.norm == 'seminorm'
    rtol, atol = args.rtol, args.atol
    hidden_channels, hidden_hidden_channels, num_hidden_layers = 90, 40, 4
    batch_size = 1024
    name = NAME + '/' + '-'.join(map(str, [norm, rtol, atol, hidden_channels, hidden_hidden_channels,
                                           num_hidden_layers])).replace('.', '-')
    save = False
    max_epochs = args.epochs
    lr = 1.6e-3
    weight_decay = 0.01

    (times, train_dataloader, val_dataloader,
     test_dataloader, input_channels, output_channels) = time_series.process_data(NAME, batch_size, _download,
                                                                                   _process_data)

    model = models.NeuralCDE(times, input_channels, hidden_channels, hidden_hidden_channels, num_hidden_layers,
                             output_channels, norm, rtol, atol)
    recorder = Recorder(model)
    t0 = time.time()
    result = train.main(name, train_dataloader, val_dataloader, test_dataloader, device, model, save, max_epochs,
                        lr, weight_decay)
    wall = time.time() - t0
    # --------------------------------------------------------------------------------------------

    sizes = {k: len(dl.dataset) for k, dl in (('train', train_dataloader), ('val', val_dataloader),
                                                ('test', test_dataloader))}
    out = dict(
        args=vars(args), name=name, sizes=sizes, input_channels=input_channels, output_channels=output_channels,
        length=len(times), parameters=result['parameters'], wall_seconds=wall, train_loop_seconds=result['timespan'],
        training_steps=recorder.steps,
        training_backward_nfe_total=sum(s['backward_nfe'] for s in recorder.steps),
        training_forward_nfe_total=sum(s['forward_nfe'] for s in recorder.steps),
        scheduler_calls=recorder.scheduler_calls,
        history=[dict(epoch=h['epoch'], train_metrics=_metrics_summary(h['train_metrics']),
                      val_metrics=_metrics_summary(h['val_metrics'])) for h in result['history']],
        paper_bnfe_train_metric_passes=sum(h['train_metrics']['backward_nfe'] for h in result['history']),
        val_metric_passes_backward_nfe=sum(h['val_metrics']['backward_nfe'] for h in result['history']),
        val_metric_passes_forward_nfe=sum(h['val_metrics']['forward_nfe'] for h in result['history']),
        final_train_metrics=_metrics_summary(result['train_metrics']),
        final_val_metrics=_metrics_summary(result['val_metrics']),
        final_test_metrics=_metrics_summary(result['test_metrics']),
    )
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(out, f, indent=1)
    print('SUMMARY', json.dumps({k: out[k] for k in ('name', 'sizes', 'parameters', 'wall_seconds',
                                                       'training_backward_nfe_total', 'paper_bnfe_train_metric_passes',
                                                       'val_metric_passes_backward_nfe')}))
    print('FINAL TEST', json.dumps(out['final_test_metrics']))


if __name__ == '__main__':
    main()
