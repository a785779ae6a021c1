"""An unknown config key names the closest known key of its section, in files and in --set."""

import json
from pathlib import Path

import pytest

from srgan.config import ConfigError, load_config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "gan.adversarial_wieght=0.01",
            "gan.adversarial_wieght: unknown key (did you mean gan.adversarial_weight?)",
        ),
        ("runtime.log_evry=10", "runtime.log_evry: unknown key (did you mean runtime.log_every?)"),
        ("gam.batch_size=4", "gam: unknown key (did you mean gan?)"),
        ("nmae=x", "nmae: unknown key (did you mean name?)"),
        (
            'gan.lr_phases=[{"epoch": 1, "lr": 1e-4}]',
            "gan.lr_phases[0].epoch: unknown key (did you mean gan.lr_phases[0].epochs?)",
        ),
        ("pretrain.foo=1", "pretrain.foo: unknown key"),  # nothing close: no guess
    ],
)
def test_an_unknown_key_in_set_names_the_closest_known_one(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, [override], check_paths=False)
    assert str(error.value) == message


def test_an_unknown_key_in_a_file_names_the_closest_known_one(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"name": "typo", "model": {"num_block": 8}}))
    with pytest.raises(ConfigError) as error:
        load_config(path, check_paths=False)
    assert str(error.value) == "model.num_block: unknown key (did you mean model.num_blocks?)"
