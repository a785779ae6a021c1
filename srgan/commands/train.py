"""Stage 2: train SRGAN from the pretrained SRResNet (Ledig et al., arXiv 1609.04802, Section 3.2).

The generator starts from gan.pretrained_generator ("auto": this run's best SRResNet) and is
trained with the perceptual loss in the learning-rate phases of gan.lr_phases.

    python scripts/train.py --config configs/quickstart.json
    torchrun --nproc_per_node=4 scripts/train.py --config config.json
"""

from srgan.commands.common import stage_main
from srgan.train.stages import train_gan


def main() -> None:
    stage_main(train_gan, "training SRGAN", __doc__)


if __name__ == "__main__":
    main()
