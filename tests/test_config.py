"""Config loading: every mistake is a ConfigError naming its key, in process and from the scripts.

The script checks run scripts/pretrain.py the way a user would and expect exit code 2 with a
one-line `error: ...` that names the key (no traceback).
"""

import subprocess
from pathlib import Path

import pytest
from conftest import TINY_MAX_STEPS, PretrainedRun, TinyDataset, describe, run_scripts

from srgan.checkpoint import config_changes
from srgan.config import (
    Config,
    ConfigError,
    LrPhase,
    config_to_dict,
    load_config,
    save_config,
    with_defaults,
)

# label: (--set override or None for the malformed file, text the error message must contain)
SCRIPT_ERRORS = {
    "unknown key": ("pretrain.foo=1", "pretrain.foo: unknown key"),
    "wrong type": ('model.scale="x"', 'model.scale: expected int, got "x"'),
    "negative lr": ("pretrain.lr=-0.001", "pretrain.lr: must be positive"),
    # An absurd value that costs no memory should the bound ever go: a NaN after a step.
    "absurd lr": ("pretrain.lr=1e300", "pretrain.lr: must be at most 1.0, got 1e+300"),
    "crop not divisible": ("data.crop_size=42", "data.crop_size: 42 is not divisible"),
    "missing data folder": ("data.train_dir=no/such/folder", "data.train_dir: folder no/such"),
    "malformed json": (None, "invalid JSON at line 3, column"),
}
MALFORMED_JSON = '{\n  "name": "tiny",\n  "seed": 0,,\n}\n'


@pytest.fixture(scope="module")
def script_errors(
    tmp_path_factory: pytest.TempPathFactory, tiny_config_args: list[str]
) -> dict[str, subprocess.CompletedProcess]:
    """Each SCRIPT_ERRORS case through scripts/pretrain.py (run together to save time)."""
    folder = tmp_path_factory.mktemp("config_errors")
    malformed = folder / "malformed.json"
    malformed.write_text(MALFORMED_JSON)
    commands = {}
    for label, (override, _) in SCRIPT_ERRORS.items():
        args = [*tiny_config_args, "--run-dir", str(folder / label.replace(" ", "_"))]
        args += ["--set", override] if override else ["--config", str(malformed)]
        commands[label] = ("pretrain.py", args)
    results = run_scripts(commands, cwd=folder)
    # A config error stops the script before it creates anything.
    assert sorted(path.name for path in folder.iterdir()) == ["malformed.json"]
    return results


@pytest.mark.parametrize("label", list(SCRIPT_ERRORS))
def test_script_config_error_exits_2_naming_the_key(
    script_errors: dict[str, subprocess.CompletedProcess], label: str
) -> None:
    result = script_errors[label]
    assert result.returncode == 2, describe(result)
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: "), describe(result)
    assert SCRIPT_ERRORS[label][1] in lines[-1], describe(result)
    assert "Traceback" not in result.stderr


def tiny_config(tiny_overrides: list[str], *extra: str) -> Config:
    return load_config(None, [*tiny_overrides, *extra])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("pretrain.foo=1", "pretrain.foo: unknown key"),
        ("colour=1", "colour: unknown key"),
        ('model.scale="x"', "model.scale: expected int"),
        ("model.scale=4.0", "model.scale: expected int"),
        ("pretrain.lr=-0.001", "pretrain.lr: must be positive"),
        ("pretrain.lr=0", "pretrain.lr: must be positive"),
        ("data.crop_size=42", "data.crop_size: 42 is not divisible by model.scale 4"),
        ("data.crop_size=40", "data.crop_size: must be a multiple of 16"),
        ("data.degradation=nearest", 'data.degradation: must be one of "bicubic", "gaussian"'),
        ("data.valid_dir=no/such/folder", "data.valid_dir: folder no/such/folder does not exist"),
        ("pretrain=3", "pretrain: expected an object"),
        ("model.num_blocks.x=1", "--set model.num_blocks.x=1: num_blocks is not a section"),
        ("pretrain.lr=Infinity", "pretrain.lr: must be a finite number, got inf"),
        ("data.gaussian_sigma=NaN", "data.gaussian_sigma: must be a finite number, got nan"),
        ("gan.adversarial_weight=Infinity", "gan.adversarial_weight: must be a finite number"),
        ('gan.lr_phases=[{"epochs": 1, "lr": Infinity}]', "gan.lr_phases[0].lr: must be a finite"),
        ("seed=-1", "seed: must be in [0, 2^32), got -1"),
        ("seed=18446744073709551616", "seed: 18446744073709551616 is out of range"),
        ("seed=4294967296", "seed: must be in [0, 2^32)"),
        ("name=..", "name: must be a plain file name"),
        ("name=a/b", "name: must be a plain file name"),
        ("name=.hidden", "name: must be a plain file name"),
    ],
)
def test_load_config_errors_name_the_key(
    tiny_overrides: list[str], override: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        tiny_config(tiny_overrides, override)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("pretrain.batch_size=10000000", "pretrain.batch_size: must be at most 1,024, got 10,0"),
        ("gan.batch_size=2048", "gan.batch_size: must be at most 1,024, got 2,048"),
        ("model.num_blocks=10000000", "model.num_blocks: must be 1 to 256, got 10000000"),
        ("model.num_channels=100000", "model.num_channels: must be 1 to 1024, got 100000"),
        ("model.discriminator_channels=4096", "model.discriminator_channels: must be at most 512"),
        ("data.crops_per_image=1000000000000000", "data.crops_per_image: must be at most 10,000"),
        ("pretrain.lr=1e300", "pretrain.lr: must be at most 1.0, got 1e+300"),
        ('gan.lr_phases=[{"epochs": 1, "lr": 2}]', "gan.lr_phases[0].lr: must be at most 1.0"),
        ("data.gaussian_sigma=1e300", "data.gaussian_sigma: must be 0.01 to 10.0, got 1e+300"),
        ("data.gaussian_sigma=1e-300", "data.gaussian_sigma: must be 0.01 to 10.0, got 1e-300"),
        ("data.crop_size=100000", "data.crop_size: must be at most 512, got 100,000"),
        ("pretrain.epochs=100000000", "pretrain.epochs: must be at most 10,000,000"),
        ('gan.lr_phases=[{"epochs": 1e12, "lr": 1}]', "gan.lr_phases[0].epochs: expected int"),
        (
            'gan.lr_phases=[{"epochs": 1000000000000, "lr": 1}]',
            "gan.lr_phases[0].epochs: must be at most 10,000,000",
        ),
    ],
)
def test_values_no_real_run_needs_are_refused_naming_the_key(
    tiny_overrides: list[str], override: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        tiny_config(tiny_overrides, override)
    assert message in str(error.value)


def test_a_gaussian_blur_wider_than_the_crop_is_refused(tiny_overrides: list[str]) -> None:
    blur = ["data.degradation=gaussian", "data.gaussian_sigma=10"]
    with pytest.raises(ConfigError) as error:
        tiny_config(tiny_overrides, *blur, "data.crop_size=16")
    assert str(error.value) == (
        "data.gaussian_sigma: a blur of sigma 10.0 reaches 30 px, more than data.crop_size 16 "
        "allows"
    )
    assert tiny_config(tiny_overrides, *blur).data.gaussian_sigma == 10  # 32 px crops


def test_the_largest_allowed_values_load(tiny_overrides: list[str]) -> None:
    largest = ["pretrain.batch_size=1024", "model.num_blocks=256", "model.num_channels=1024"]
    largest += ["pretrain.lr=1", "data.gaussian_sigma=10", "data.crops_per_image=10000"]
    config = tiny_config(tiny_overrides, *largest)
    assert (config.model.num_blocks, config.model.num_channels) == (256, 1024)


def test_malformed_json_file_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(MALFORMED_JSON)
    with pytest.raises(ConfigError, match=r"bad\.json: invalid JSON at line 3, column 13"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("runtime.channels_last=1", "runtime.channels_last: expected bool, got 1"),
        ("model.num_blocks=true", "model.num_blocks: expected int, got true"),
        ("pretrain.lr=false", "pretrain.lr: expected float, got false"),
    ],
)
def test_bool_and_int_are_not_interchangeable(
    tiny_overrides: list[str], override: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        tiny_config(tiny_overrides, override)
    assert message in str(error.value)


def test_int_accepted_for_float(tiny_overrides: list[str]) -> None:
    config = tiny_config(tiny_overrides, "pretrain.lr=1", "runtime.channels_last=false")
    assert config.pretrain.lr == 1.0 and isinstance(config.pretrain.lr, float)
    assert config.runtime.channels_last is False


@pytest.mark.parametrize(
    ("betas", "message"),
    [
        ("[0.9]", "pretrain.betas: expected 2 values, got 1"),
        ("[0.9, 0.99, 0.999]", "pretrain.betas: expected 2 values, got 3"),
        ("0.9", "pretrain.betas: expected a list"),
        ('[0.9, "a"]', "pretrain.betas[1]: expected float"),
        ("[0.9, 1.0]", "pretrain.betas[1]: must be in [0, 1)"),
    ],
)
def test_betas_must_be_two_numbers(tiny_overrides: list[str], betas: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        tiny_config(tiny_overrides, f"pretrain.betas={betas}")
    assert message in str(error.value)


def test_betas_parse_to_a_tuple(tiny_overrides: list[str]) -> None:
    config = tiny_config(tiny_overrides, "gan.betas=[0.5, 0.9]")
    assert config.gan.betas == (0.5, 0.9)


def test_gan_lr_phases_parse(tiny_overrides: list[str]) -> None:
    config = tiny_config(
        tiny_overrides, 'gan.lr_phases=[{"epochs": 3, "lr": 2e-4}, {"epochs": 1, "lr": 1}]'
    )
    assert config.gan.lr_phases == (LrPhase(epochs=3, lr=2e-4), LrPhase(epochs=1, lr=1.0))
    assert isinstance(config.gan.lr_phases[1].lr, float)


@pytest.mark.parametrize(
    ("phases", "message"),
    [
        ("[]", "gan.lr_phases: needs at least one phase"),
        ('[{"epochs": 3}]', "gan.lr_phases[0]:"),
        ('[{"epochs": 3, "lr": 1e-4, "decay": 2}]', "gan.lr_phases[0].decay: unknown key"),
        ('[{"epochs": 3, "lr": 1e-4}, {"epochs": 1, "lr": -1}]', "gan.lr_phases[1].lr: must be"),
        ('[{"epochs": -1, "lr": 1e-4}]', "gan.lr_phases[0].epochs: must be >= 0"),
        ('{"epochs": 3, "lr": 1e-4}', "gan.lr_phases: expected a list"),
    ],
)
def test_gan_phase_errors_name_the_phase(
    tiny_overrides: list[str], phases: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        tiny_config(tiny_overrides, f"gan.lr_phases={phases}")
    assert message in str(error.value)


def test_missing_lr_names_the_field(tiny_overrides: list[str]) -> None:
    with pytest.raises(ConfigError, match=r"gan\.lr_phases\[0\]: .*'lr'"):
        tiny_config(tiny_overrides, 'gan.lr_phases=[{"epochs": 3}]')


def test_renamed_keys_still_read(tmp_path: Path) -> None:
    """Configs written before the renames (gan.stages, gan.content_layer) keep working, in
    files and in --set; naming a key twice, old and new, is refused."""
    path = tmp_path / "old.json"
    path.write_text('{"gan": {"stages": [{"epochs": 2, "lr": 5e-5}], "content_layer": "vgg22"}}')
    config = load_config(path, check_paths=False)
    assert config.gan.lr_phases == (LrPhase(epochs=2, lr=5e-5),)
    assert config.gan.content_loss == "vgg22"
    config = load_config(path, ["gan.content_layer=vgg54"], check_paths=False)
    assert config.gan.content_loss == "vgg54"
    path.write_text('{"gan": {"content_layer": "vgg22", "content_loss": "mse"}}')
    with pytest.raises(ConfigError, match="gan.content_layer: is the old name of gan.content_loss"):
        load_config(path, check_paths=False)


@pytest.mark.parametrize("value", ["vgg54", "vgg22", "mse"])
def test_content_loss_choices(tiny_overrides: list[str], value: str) -> None:
    assert tiny_config(tiny_overrides, f"gan.content_loss={value}").gan.content_loss == value


def test_unknown_content_loss_is_refused(tiny_overrides: list[str]) -> None:
    message = 'gan.content_loss: must be one of "vgg54", "vgg22", "mse"'
    with pytest.raises(ConfigError, match=message):
        tiny_config(tiny_overrides, "gan.content_loss=vgg33")


def test_unknown_discriminator_is_refused(tiny_overrides: list[str]) -> None:
    assert tiny_config(tiny_overrides, "model.discriminator=srgan").model.discriminator == "srgan"
    with pytest.raises(
        ConfigError, match='model.discriminator: must be one of "srgan", got "esrgan"'
    ):
        tiny_config(tiny_overrides, "model.discriminator=esrgan")


def test_a_stored_config_without_later_keys_compares_equal_to_their_defaults() -> None:
    """A checkpoint saved before model.discriminator existed resumes with no config change; a
    real change still shows, and a renamed key is read under its new name."""
    current = config_to_dict(Config())
    stored = config_to_dict(Config())
    del stored["model"]["discriminator"]
    del stored["gan"]["adversarial_ramp_steps"]
    stored["gan"]["content_layer"] = stored["gan"].pop("content_loss")
    assert config_changes(with_defaults(stored), current) == []
    stored["gan"]["adversarial_weight"] = 0.01
    assert config_changes(with_defaults(stored), current) == [
        "gan.adversarial_weight: 0.01 -> 0.001"
    ]


def test_file_values_and_overrides_combine(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"name": "file", "model": {"scale": 2, "num_blocks": 3}}')
    config = load_config(path, ["model.num_blocks=5"], check_paths=False)
    assert (config.name, config.model.scale, config.model.num_blocks) == ("file", 2, 5)
    assert config.model.num_channels == Config().model.num_channels  # default kept


def test_save_and_load_round_trip(tmp_path: Path, tiny_overrides: list[str]) -> None:
    config = tiny_config(
        tiny_overrides, 'gan.lr_phases=[{"epochs": 2, "lr": 3e-4}, {"epochs": 1, "lr": 3e-5}]'
    )
    path = tmp_path / "saved.json"
    save_config(config, path)
    assert load_config(path) == config
    assert config_to_dict(load_config(path)) == config_to_dict(config)


def test_run_folder_holds_resolved_config(
    pretrained_run: PretrainedRun, tiny_dataset: TinyDataset, tiny_overrides: list[str]
) -> None:
    written = pretrained_run.run_dir / "config.json"
    assert written.is_file()
    epochs = f"pretrain.epochs={TINY_MAX_STEPS}"  # the fixture's own override
    expected = load_config(tiny_dataset.config_file, [*tiny_overrides, epochs])
    assert load_config(written) == expected
    assert expected.name == "tiny" and expected.model.num_blocks == 2  # the overrides applied
