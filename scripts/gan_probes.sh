#!/usr/bin/env bash
# The short GAN probes of docs/research.md. Each GAN probe starts from an SRResNet on the 291
# images with the same seed and data, runs 525 steps of the paper's SRGAN-MSE at lr 1e-4
# (configs/srgan_mse_291.json) with one change, and validates the generator's weight average
# (decay 0.995, which does not feed back into training) and the trained weights on the 8
# held-out photographs every 105 steps. Most start from the shipped SRResNet; the blur and
# ICNR probes first pretrain the SRResNet they start from (a short fine-tune of the shipped
# one, with and without the blur; two equal short pretrainings from scratch, with and without
# ICNR). Resumable: rerun the same command after a stop. DRY_RUN=1 prints the commands.
#
#   bash scripts/gan_probes.sh [OUT_DIR] [PROBE ...]     (default: runs/probes, the first six)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/probes}
shift || true
python=${PYTHON:-.venv/bin/python}
run() { if [[ -n "${DRY_RUN:-}" ]]; then printf '%q ' "$@"; echo; else "$@"; fi; }
shipped=checkpoints/srresnet_x4_291.safetensors
declare -A changes=(
  [paper]=""
  [warmup200]="gan.discriminator_warmup_steps=200"
  [ramp300]="gan.adversarial_ramp_steps=300"
  [frozen_bn]="gan.freeze_generator_batchnorm=true"
  [d_lr_0.25]="gan.discriminator_lr_factor=0.25"
  [betas_0.5]="gan.betas=[0.5,0.999]"
  [lr_2e-5]='gan.lr_phases=[{"epochs": 5, "lr": 2e-5}]'
  [finetuned]=""
  [finetuned_blur]="model.upsample_blur=true"
  [scratch]=""
  [scratch_icnr]="pretrain.subpixel_init=icnr"
)
# The SRResNet each probe starts from: the shipped one, or a pretraining of its own.
declare -A pretraining=(
  [finetuned]="finetune" [finetuned_blur]="finetune" [scratch]="scratch" [scratch_icnr]="scratch"
)
order=(paper warmup200 ramp300 frozen_bn d_lr_0.25 betas_0.5)

# A short pretraining on the 291 images: 846 steps (6 epochs of 8 crops per image), cosine
# from 1e-4 from the shipped weights ("finetune") or 2,820 steps from 4e-4 from scratch.
pretrain() {
  local name=$1 kind=$2 change=$3 options=()
  if [[ $kind == finetune ]]; then
    options=(--set pretrain.epochs=6 --set pretrain.lr=1e-4
      --set "pretrain.initial_generator=$shipped")
  else
    options=(--set pretrain.epochs=20)
  fi
  [[ -n "$change" ]] && options+=(--set "$change")
  run "$python" scripts/pretrain.py --config configs/srresnet_291.json --set name="probe_$name" \
    --set data.crops_per_image=8 --set pretrain.validate_every=2 \
    --set runtime.checkpoint_every=141 "${options[@]}" --run-dir "$out/$name" --resume auto
}

for name in "${@:-${order[@]}}"; do
  [[ -v "changes[$name]" ]] || { echo "unknown probe $name (known: ${!changes[*]})" >&2; exit 2; }
  change=${changes[$name]}
  echo "== probe $name: ${change:-none (the paper)}"
  start=$shipped extra=()
  if [[ -v "pretraining[$name]" ]]; then
    pretrain "$name" "${pretraining[$name]}" "$change"
    start="$out/$name/checkpoints/srresnet_x4_probe_${name}_final.pt"
    [[ $change == model.* ]] && extra=(--set "$change")
  elif [[ -n "$change" ]]; then
    extra=(--set "$change")
  fi
  run "$python" scripts/train.py --config configs/srgan_mse_291.json \
    --set name="probe_$name" --set data.crops_per_image=6 \
    --set 'gan.lr_phases=[{"epochs": 5, "lr": 1e-4}]' --set "gan.pretrained_generator=$start" \
    --set gan.generator_ema_decay=0.995 --set gan.validate_trained_generator=true \
    --set runtime.checkpoint_every=105 --set runtime.keep_checkpoints=10 \
    "${extra[@]}" --run-dir "$out/$name" --resume auto
done
