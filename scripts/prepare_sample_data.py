"""Write the built-in sample images for the quickstart.

Same as the `srgan-sample-data` command of the installed package; `--help` lists the options.
"""

import sys

from srgan.commands.prepare_sample_data import main

if __name__ == "__main__":
    sys.exit(main())
