#!/usr/bin/env bash
# The short GAN probes of docs/research.md: each starts from the shipped SRResNet on the 291
# images with the same seed and data, runs 525 steps of the paper's SRGAN-MSE at lr 1e-4
# (configs/srgan_mse_291.json) with one change, and validates the generator's weight average
# (decay 0.995, which does not feed back into training) and the trained weights on the 8
# held-out photographs every 105 steps. Resumable: rerun the same command after a stop.
#
#   bash scripts/gan_probes.sh [OUT_DIR] [PROBE ...]     (default: runs/probes, all probes)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/probes}
shift || true
python=${PYTHON:-.venv/bin/python}
declare -A changes=(
  [paper]=""
  [warmup200]="gan.discriminator_warmup_steps=200"
  [ramp300]="gan.adversarial_ramp_steps=300"
  [frozen_bn]="gan.freeze_generator_batchnorm=true"
  [d_lr_0.25]="gan.discriminator_lr_factor=0.25"
  [betas_0.5]="gan.betas=[0.5,0.999]"
)
order=(paper warmup200 ramp300 frozen_bn d_lr_0.25 betas_0.5)
for name in "${@:-${order[@]}}"; do
  [[ -v "changes[$name]" ]] || { echo "unknown probe $name (known: ${order[*]})" >&2; exit 2; }
  extra=()
  [[ -n "${changes[$name]}" ]] && extra=(--set "${changes[$name]}")
  echo "== probe $name: ${changes[$name]:-none (the paper)}"
  "$python" scripts/train.py --config configs/srgan_mse_291.json \
    --set name="probe_$name" --set data.crops_per_image=6 \
    --set 'gan.lr_phases=[{"epochs": 5, "lr": 1e-4}]' \
    --set gan.generator_ema_decay=0.995 --set gan.validate_trained_generator=true \
    --set runtime.checkpoint_every=105 --set runtime.keep_checkpoints=10 \
    "${extra[@]}" --run-dir "$out/$name" --resume auto
done
