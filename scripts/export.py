"""Export a trained generator to ONNX, a torch.export program (.pt2) or safetensors.

Same as the `srgan-export` command of the installed package; `--help` lists the options.
"""

import sys

from srgan.commands.export import main

if __name__ == "__main__":
    sys.exit(main())
