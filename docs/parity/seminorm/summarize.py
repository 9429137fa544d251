"""Table of the authors'-code counts from logs/*.json (written by run_authors_jv.py). Usage: python summarize.py [EPOCHS]"""
import json, math, statistics, sys, pathlib
HERE = pathlib.Path(__file__).resolve().parent
epochs = sys.argv[1] if len(sys.argv) > 1 else '100'

def load(norm, seed):
    if epochs == '21' and seed != 0:
        return None
    p = HERE / 'logs' / (f'{norm}_e{epochs}_s{seed}.json' if epochs != '21' else f'trial_{norm}_e21.json')
    return json.load(open(p)) if p.exists() else None

def best_pass(d):
    best, ep = math.inf, None
    for h in d['history']:
        if h['train_metrics']['loss'] * 1.0001 < best:
            best, ep = h['train_metrics']['loss'], h['epoch']
    return ep

def row(d):
    h = d['history']
    lr_changes = [(c['after_training_step'] - 1, c['lr_after']) for c in d['scheduler_calls'] if c['lr_after'] != c['lr_before']]
    steps = d['training_steps']
    return {
        'train-step BNFE (sum over %d steps)' % len(steps): d['training_backward_nfe_total'],
        'train-step FNFE (sum)': d['training_forward_nfe_total'],
        'paper BNFE: sum train-pass BNFE (%d passes)' % len(h): d['paper_bnfe_train_metric_passes'],
        '  as parse_results prints (x1e6)': round(d['paper_bnfe_train_metric_passes'] / 1e5, 5),
        'train-pass FNFE (sum)': sum(x['train_metrics']['forward_nfe'] for x in h),
        'val-pass BNFE (sum)': d['val_metric_passes_backward_nfe'],
        'val-pass FNFE (sum)': d['val_metric_passes_forward_nfe'],
        'final train pass FNFE/BNFE': '%d/%d' % (d['final_train_metrics']['forward_nfe'], d['final_train_metrics']['backward_nfe']),
        'final val pass FNFE/BNFE': '%d/%d' % (d['final_val_metrics']['forward_nfe'], d['final_val_metrics']['backward_nfe']),
        'final test pass FNFE': d['final_test_metrics']['forward_nfe'],
        'final test pass BNFE': d['final_test_metrics']['backward_nfe'],
        'final test accuracy': '%.4f (%d/%d)' % (d['final_test_metrics']['accuracy'], round(d['final_test_metrics']['accuracy'] * 96), 96),
        'final test loss': round(d['final_test_metrics']['loss'], 4),
        'model evaluated: best-train-loss pass at epoch': best_pass(d),
        'train loss at that pass': '%.3g' % min(x['train_metrics']['loss'] for x in h),
        'scheduler.step calls / LR changes (epoch->lr)': '%d / %s' % (len(d['scheduler_calls']), lr_changes or 'none'),
        'wall s (whole run) / median s per training step': '%.0f / %.2f' % (d['wall_seconds'], statistics.median(s['seconds_since_last'] for s in steps[1:])),
    }

NUMERIC = {'train-step BNFE', 'paper BNFE', 'val-pass BNFE', 'final test pass BNFE', 'train-step FNFE', 'val-pass FNFE', 'final test pass FNFE'}
for seed in (0, 1):
    dd, ds = load('default', seed), load('seminorm', seed)
    if not (dd and ds):
        continue
    rd, rs = row(dd), row(ds)
    print(f'\n### epochs {epochs}, seed {seed}\n')
    print('| count | default norm | seminorm | change |\n|---|---|---|---|')
    for k in rd:
        ch = ''
        if isinstance(rd[k], (int, float)) and any(k.startswith(n) for n in NUMERIC) and rd[k]:
            ch = '%+.1f%%' % (100 * (rs[k] - rd[k]) / rd[k])
        print(f'| {k} | {rd[k]} | {rs[k]} | {ch} |')
    print('\nper metric pass (epoch: train-pass BNFE default/seminorm, val-pass BNFE default/seminorm, train loss default/seminorm):')
    for a, b in zip(dd['history'], ds['history']):
        print('  %3d: %d/%d  %d/%d  %.3g/%.3g' % (a['epoch'], a['train_metrics']['backward_nfe'], b['train_metrics']['backward_nfe'],
              a['val_metrics']['backward_nfe'], b['val_metrics']['backward_nfe'], a['train_metrics']['loss'], b['train_metrics']['loss']))
