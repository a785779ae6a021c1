"""Measure training speed on this machine, against what its hardware can do.

Same as the `srgan-benchmark` command of the installed package; `--help` lists the options.
"""

import sys

from srgan.commands.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
