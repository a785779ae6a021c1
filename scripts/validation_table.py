"""Print the validation rows of training runs (their metrics.jsonl) as a Markdown table.

`--help` lists the options.
"""

import sys

from srgan.commands.validation_table import main

if __name__ == "__main__":
    sys.exit(main())
