"""This harness's metric pass (runs.passes' loop: task.pass_batches, backward, NFE) on a checkpointed model, to set
beside cross_eval.py (the authors' pipeline on the same model). usage (the project's venv, from the repository root):
python harness_eval.py CHECKPOINT.pt NORM [model|best]"""
import json, sys
sys.path.insert(0, ".")
import torch
torch.set_num_threads(1)
from runs.bench.common import compose_config
from runs.build import build_method, build_task

ckpt, norm = sys.argv[1], sys.argv[2]
key = sys.argv[3] if len(sys.argv) > 3 else "model"
cfg = compose_config(["+experiment=seminorm/speech_commands", "scale=paper", "protocol=authors",
                      "task.data=uea/JapaneseVowels", f"norm={norm}", "seed=0"])
task = build_task(cfg, torch.device("cpu"), torch.float32)
method = build_method(cfg)
state = torch.load(ckpt, map_location="cpu", weights_only=False)
task.model.load_state_dict(state["model"] if key == "model" else state["passes"]["best_model"])
task.model.eval()
out = {}
for split in ("train", "val", "test"):
    method.nfe.take()
    bwd = fwd = 0
    for loss, size, extra in task.pass_batches(split, method):
        loss.backward()
        c = method.nfe.take()
        fwd, bwd = fwd + c.fwd_nfe, bwd + c.bwd_nfe
        task.model.zero_grad(set_to_none=True)
    out[split] = {"loss": loss.item(), "fwd": fwd, "bwd": bwd}
print(json.dumps(out))
