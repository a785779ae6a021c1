"""scripts/validation_table.py: a run's validation rows as a Markdown table."""

import json
from pathlib import Path

from conftest import run_script


def test_the_table_has_one_row_per_validation_with_both_generators(tmp_path: Path) -> None:
    run_dir = tmp_path / "probe"
    run_dir.mkdir()
    rows = [
        {"stage": "pretrain", "step": 10, "valid/psnr_y": 30.0},
        {"stage": "gan", "step": 50, "loss/d_real": 0.61, "loss/d_fake": 0.32},
        {
            "stage": "gan",
            "step": 100,
            "loss/d_real": 0.7,
            "loss/d_fake": 0.25,
            "valid/psnr_y": 27.431,
            "valid/niqe": 7.216,
            "valid/grid_percent": 2.127,
            "valid_trained/psnr_y": 26.765,
            "valid_trained/niqe": 9.982,
            "valid_trained/grid_percent": 7.133,
        },
        {"stage": "gan", "step": 200, "valid/psnr_y": 27.0, "valid/grid_percent": 3.0},
    ]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = run_script("validation_table.py", [str(run_dir)], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[2:] == [
        "| 100 | 27.43 / 7.22 / 2.13 | 26.77 / 9.98 / 7.13 | 0.70 / 0.25 |",
        "| 200 | 27.00 / – / 3.00 | – | – |",
    ]
    missing = run_script("validation_table.py", [str(tmp_path / "none")], tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr
