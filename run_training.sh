#!/usr/bin/env bash
# The whole schedule from one config: SRResNet pretraining -> SRGAN training -> evaluation.
#   bash run_training.sh                             # config.json: DIV2K, 200 + 50 + 50 epochs
#   bash run_training.sh configs/quickstart.json     # built-in sample images, 5-17 min on 2 CPU cores
#   bash run_training.sh configs/srgan_paper.json    # DIV2K at the paper's lengths (a GPU box)
# Extra arguments go to both training scripts, e.g. --device cuda or --set runtime.compile=true.
set -euo pipefail
config="${1:-config.json}"
shift || true
source "$(dirname "${BASH_SOURCE[0]}")/scripts/venv.sh"
cd "$repo_root"

# Where this config keeps its data and run outputs (validated like the training scripts do).
read -r name scale sample_data train_dir valid_dir < <("$PYTHON_BIN" - "$config" <<'PY'
import sys
from srgan.config import ConfigError, load_config
try:
    config = load_config(sys.argv[1], check_paths=False)
except ConfigError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
data = config.data
print(config.name, config.model.scale, int(data.sample_data), data.train_dir, data.valid_dir)
PY
)
# Sample data is written by the training scripts themselves; any other data must be there.
if [ "$sample_data" = 0 ]; then
    for folder in "$train_dir" "$valid_dir"; do
        if [ ! -d "$folder" ]; then
            "$PYTHON_BIN" -c "import sys; from srgan.datasets.catalog import missing_data_hint; print('error: ' + missing_data_hint(sys.argv[1]), file=sys.stderr)" "$folder"
            exit 2
        fi
    done
fi

start=$(date +%s)
"$PYTHON_BIN" scripts/pretrain.py --config "$config" --resume auto "$@"
"$PYTHON_BIN" scripts/train.py --config "$config" --resume auto "$@"
checkpoints="checkpoints/$name"
# The validation folder, and the benchmarks where scripts/download_data.py set5 set14 put them.
eval_dirs=("$valid_dir")
for benchmark in data/benchmarks/Set5/HR data/benchmarks/Set14/HR; do
    if [ -d "$benchmark" ]; then eval_dirs+=("$benchmark"); fi
done
"$PYTHON_BIN" scripts/evaluate.py \
    --checkpoint "$checkpoints/srresnet_x${scale}_${name}_best.pt" "$checkpoints/srgan_x${scale}_${name}_final.pt" \
    --data "${eval_dirs[@]}" --out "results/$name" --overwrite
echo
echo "done in $(( $(date +%s) - start )) s"
echo "  checkpoints: $checkpoints/"
echo "  logs:        logs/$name/ (metrics.jsonl, curves.png, config.json)"
echo "  results:     results/$name/ (results.md, comparisons/)"
