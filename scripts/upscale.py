"""Upscale images with a trained generator.

Same as the `srgan-upscale` command of the installed package; `--help` lists the options.
"""

import sys

from srgan.commands.upscale import main

if __name__ == "__main__":
    sys.exit(main())
