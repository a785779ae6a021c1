"""Cut HR images into overlapping sub-images (BasicSR layout).

Same as the `srgan-subimages` command of the installed package; `--help` lists the options.
"""

import sys

from srgan.commands.prepare_subimages import main

if __name__ == "__main__":
    sys.exit(main())
