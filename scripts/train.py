"""Stage 2: train SRGAN from the pretrained SRResNet (Ledig et al., arXiv 1609.04802, Section 3.2).

The generator starts from gan.pretrained_generator ("auto": this run's best SRResNet) and is
trained with the perceptual loss in the learning-rate stages of gan.stages.

    python scripts/train.py --config configs/quickstart.json
    torchrun --nproc_per_node=4 scripts/train.py --config config.json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from srgan.cli import stage_main
from srgan.stages import train_gan

if __name__ == "__main__":
    stage_main(train_gan, "training SRGAN", __doc__)
