#!/usr/bin/env bash
# The CMERC step-cost comparison of every backbone on a GPU, in one go (the README's GPU table), after
# ContextMaskedRNN's two subsequence paths (benchmarks/context_rnn.py) for M3Net's GRU and DialogueGCN's LSTM.
#   bash benchmarks/gpu_step_costs.sh [LOG]
# Runs from the repository root without installing the package (PYTHONPATH=src); if the folder .whl holds
# wheels (the GPU image lacks `datasets` or has older `transformers`), they are installed into /tmp/site first.
set -u -o pipefail
log=${1:-gpu_step_costs.log}
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD/src
else
    export PYTHONPATH=$PWD/src
fi
python3 - <<'PY' 2>&1 | tee "$log" || exit 1
import torch, transformers, datasets, pyarrow
print("torch", torch.__version__, "| transformers", transformers.__version__, "| datasets", datasets.__version__,
      "| pyarrow", pyarrow.__version__, "|", torch.cuda.get_device_name(), "| cudnn", torch.backends.cudnn.version())
PY
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,utilization.gpu,memory.used --format=csv | tee -a "$log"
run() {  # one backbone; a hung or failed run must not stop the others
    echo "### $*" | tee -a "$log"
    timeout 75 python3 benchmarks/cmerc_step.py --device cuda --profile "$@" 2>&1 | tee -a "$log" | grep -v Warning
}
for rnn in "" "--cell lstm --input_size 2948 --hidden_size 100 --num_layers 1"; do
    timeout 60 python3 benchmarks/context_rnn.py --device cuda --repeats 20 $rnn 2>&1 | tee -a "$log"
done
run --backbone m3net --steps 10 --warmup 3
run --backbone m3net --view_mode exact --steps 10 --warmup 3
run --backbone mmgcn --steps 6 --warmup 2
run --backbone mmdfn --steps 6 --warmup 2
run --backbone dialoguegcn --steps 6 --warmup 2
run --backbone sure --steps 6 --warmup 2
run --backbone dialoguernn --steps 4 --warmup 2
