"""Download, verify and install the training and benchmark datasets.

Same as the `srgan-download` command of the installed package; `--help` lists the options.
"""

import sys

from srgan.commands.download import main

if __name__ == "__main__":
    sys.exit(main())
