"""Evaluate checkpoints and baselines on folders of HR images (PSNR/SSIM-Y).

Same as the `srgan-evaluate` command of the installed package; `--help` lists the options.
"""

import sys

from srgan.commands.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
