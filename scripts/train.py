"""Stage 2: train SRGAN from the pretrained SRResNet.

Same as the `srgan-train` command of the installed package; `--help` lists the options.
"""

import sys

from srgan.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
