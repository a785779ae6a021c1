"""Stage 1: pretrain SRResNet with the pixel MSE.

Same as the `srgan-pretrain` command of the installed package; `--help` lists the options.
"""

import sys

from srgan.commands.pretrain import main

if __name__ == "__main__":
    sys.exit(main())
