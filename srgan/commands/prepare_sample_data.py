"""Write the built-in sample images (from scikit-image) for the quickstart.

python scripts/prepare_sample_data.py --config configs/quickstart.json
"""

import argparse
import sys
from pathlib import Path

from srgan.config import ConfigError, load_config
from srgan.data.sample_data import write_sample_data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config",
        default="configs/quickstart.json",
        help="config whose data.train_dir / data.valid_dir receive the images",
    )
    args = parser.parse_args()
    try:
        config = load_config(args.config, check_paths=False)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    train, valid = write_sample_data(Path(config.data.train_dir), Path(config.data.valid_dir))
    print(
        f"sample data: {len(train)} training images in {config.data.train_dir}, "
        f"{len(valid)} validation images in {config.data.valid_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
