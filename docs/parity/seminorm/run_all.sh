#!/bin/bash
# Sequential runs (one training at a time, 1 thread). Usage: bash run_all.sh
cd "$(dirname "$0")"
. venv/bin/activate
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
for seed in 0 1; do
  for norm in default seminorm; do
    tag=${norm}_e100_s${seed}
    /usr/bin/time -v python run_authors_jv.py --norm $norm --epochs 100 --seed $seed --out logs/$tag.json > logs/$tag.log 2>&1
  done
done
# determinism check: rerun the 21-epoch default seed-0 trial
python run_authors_jv.py --norm default --epochs 21 --seed 0 --out logs/rerun_default_e21.json > logs/rerun_default_e21.log 2>&1
echo done > logs/ALL_DONE
