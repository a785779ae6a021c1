"""Stage 1: pretrain SRResNet with the pixel MSE (Ledig et al., arXiv 1609.04802, Section 3.2).

python scripts/pretrain.py --config configs/quickstart.json
torchrun --nproc_per_node=4 scripts/pretrain.py --config config.json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from srgan.cli import stage_main
from srgan.stages import pretrain

if __name__ == "__main__":
    stage_main(pretrain, "pretraining SRResNet", __doc__)
