"""Stage 1: pretrain SRResNet with the pixel MSE (Ledig et al., arXiv 1609.04802, Section 3.2).

python scripts/pretrain.py --config configs/quickstart.json
torchrun --nproc_per_node=4 scripts/pretrain.py --config config.json
"""

from srgan.commands.common import stage_main
from srgan.train.stages import pretrain


def main() -> None:
    stage_main(pretrain, "pretraining SRResNet", __doc__)


if __name__ == "__main__":
    main()
