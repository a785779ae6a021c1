"""The GAN-stage options that are not in the paper, each off by default: the generator's weight
average (gan.generator_ema_decay), the discriminator warm-up, the adversarial-weight ramp, the
frozen generator BatchNorm, and ICNR for pretraining (pretrain.subpixel_init)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_RUN_NAME, run_in_process
from test_gan_options import GAN_PREFIX, gan_args  # noqa: F401 (a fixture)
from test_resume import write_generator_checkpoint
from test_steps import CPU_FP32, fixed_batch, parameters_of, tiny_networks, unchanged

from srgan.benchmark.device_checks import state_differences
from srgan.checkpoint import CheckpointError, check_spec, generator_from_checkpoint
from srgan.config import ConfigError, load_config
from srgan.eval.protocol import make_eval_image
from srgan.inference.export import export_safetensors
from srgan.inference.weights import load_generator
from srgan.models.generator import Generator, GeneratorSpec, icnr_init_
from srgan.models.losses import AdversarialLoss, GanLosses, PixelContentLoss
from srgan.run.validation import validate_generator
from srgan.train.averaging import WeightAverage
from srgan.train.networks import Network
from srgan.train.stages import freeze_batchnorm, pretrain, train_gan
from srgan.train.steps import gan_step

MSE = ["--set", "gan.content_loss=mse", "--set", "gan.pixel_weight=0"]


def plain_networks(seed: int, lr: float = 1e-3) -> tuple[Network, Network]:
    generator, discriminator = tiny_networks(seed)
    return tuple(
        Network.plain(net, torch.optim.Adam(net.parameters(), lr=lr), CPU_FP32.grad_scaler())
        for net in (generator, discriminator)
    )


def test_the_average_moves_by_one_minus_decay_and_copies_counters() -> None:
    torch.manual_seed(0)
    network = Generator(scale=4, num_blocks=1, num_channels=8)
    average = WeightAverage.of(network, decay=0.9)
    start = {k: v.clone() for k, v in average.model.state_dict().items()}
    with torch.no_grad():
        for tensor in network.state_dict().values():
            tensor.add_(1) if tensor.is_floating_point() else tensor.fill_(7)
    average.update(network)
    for name, value in average.model.state_dict().items():
        if value.is_floating_point():  # parameters and running statistics alike
            torch.testing.assert_close(value, start[name] + 0.1, rtol=0, atol=1e-6)
        else:
            assert value.item() == 7, name
    assert not average.model.training
    assert not any(p.requires_grad for p in average.model.parameters())


def test_the_gan_step_updates_the_average_after_the_generator() -> None:
    generator, discriminator = plain_networks(0)
    average = WeightAverage.of(generator.model, decay=0.5)
    before = parameters_of(generator.model)
    loss = GanLosses(PixelContentLoss())
    gan_step(generator, discriminator, loss, CPU_FP32, fixed_batch(1), average=average)
    for name, parameter in average.model.named_parameters():
        expected = (before[name] + dict(generator.model.named_parameters())[name]) / 2
        torch.testing.assert_close(parameter, expected, rtol=0, atol=1e-6)


def test_warm_up_trains_the_discriminator_only_then_both() -> None:
    generator, discriminator = plain_networks(0)
    loss = GanLosses(PixelContentLoss(), adversarial=AdversarialLoss(warmup_steps=2))
    generator_before = parameters_of(generator.model)
    discriminator_before = parameters_of(discriminator.model)
    gan_step(generator, discriminator, loss, CPU_FP32, fixed_batch(1, step=1))
    assert unchanged(generator.model, generator_before)
    assert not unchanged(discriminator.model, discriminator_before)
    gan_step(generator, discriminator, loss, CPU_FP32, fixed_batch(1, step=2))
    assert not unchanged(generator.model, generator_before)


def test_the_adversarial_weight_ramps_from_zero_after_the_warm_up() -> None:
    loss = AdversarialLoss(weight=1e-3, warmup_steps=10, ramp_steps=100)
    weights = [loss.weight_at(step) for step in (0, 10, 60, 110, 500)]
    assert weights == pytest.approx([0, 0, 5e-4, 1e-3, 1e-3])
    assert AdversarialLoss().weight_at(0) == 1e-3  # the paper


def test_frozen_batchnorm_keeps_its_statistics_through_steps_and_validation() -> None:
    generator, discriminator = plain_networks(0)
    freeze_batchnorm(generator.model)
    statistics = {k: v.clone() for k, v in generator.model.state_dict().items() if "running" in k}
    loss = GanLosses(PixelContentLoss())
    gan_step(generator, discriminator, loss, CPU_FP32, fixed_batch(1))
    image = make_eval_image(
        "a", np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8), 4
    )
    validate_generator(
        generator.model, [image], 4, torch.device("cpu")
    )  # restores each layer's own mode
    gan_step(generator, discriminator, loss, CPU_FP32, fixed_batch(2))
    after = generator.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in statistics.items())
    assert generator.model.training  # the rest of the network still trains
    assert not any(p.grad is None for p in generator.model.parameters())


def test_icnr_starts_each_sub_pixel_convolution_as_nearest_neighbour() -> None:
    torch.manual_seed(0)
    generator = icnr_init_(Generator(scale=4, num_blocks=1, num_channels=8))
    block = generator.upsample[0]
    output = block.shuffle(block.conv(torch.rand(1, 8, 5, 6)))
    nearest = output[:, :, ::2, ::2].repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(output, nearest, rtol=0, atol=0)
    plain = Generator(scale=4, num_blocks=1, num_channels=8).upsample[0]
    output = plain.shuffle(plain.conv(torch.rand(1, 8, 5, 6)))
    assert not torch.equal(output[:, :, ::2, ::2], output[:, :, 1::2, 1::2])


def gan_state(run_dir: Path, step: int) -> dict:
    path = run_dir / "checkpoints" / f"{GAN_PREFIX}_step{step:08d}.pt"
    return torch.load(path, weights_only=True)


def test_an_averaged_run_saves_the_average_as_its_generator_and_resumes_bit_identical(
    gan_args,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    args, run_dir = gan_args
    args = [*args, *MSE, "--set", "gan.generator_ema_decay=0.9", "--checkpoint-every", "2"]
    args += ["--set", "gan.validate_trained_generator=true"]
    code, _, err = run_in_process(train_gan, [*args, "--max-steps", "4"], monkeypatch, capsys)
    assert code == 0, err
    state = gan_state(run_dir, 4)
    assert state_differences(state["generator"], state["generator_trained"])  # two networks
    best = torch.load(run_dir / "checkpoints" / f"{GAN_PREFIX}_best.pt", weights_only=True)
    assert "generator_trained" not in best
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    validated = [row for row in rows if "valid/psnr_y" in row]
    assert validated and all("valid_trained/psnr_y" in row for row in validated)
    assert validated[0]["valid/psnr_y"] != validated[0]["valid_trained/psnr_y"]

    second = [arg if arg != str(run_dir) else str(tmp_path / "second") for arg in args]
    code, _, err = run_in_process(train_gan, [*second, "--max-steps", "2"], monkeypatch, capsys)
    assert code == 0, err
    code, _, err = run_in_process(
        train_gan, [*second, "--max-steps", "4", "--resume", "auto"], monkeypatch, capsys
    )
    assert code == 0, err
    resumed = gan_state(tmp_path / "second", 4)
    keys = ("generator", "generator_trained", "discriminator", "optimizers", "scalers")
    assert state_differences({k: state[k] for k in keys}, {k: resumed[k] for k in keys}) == []


def test_turning_the_average_on_at_a_resume_is_refused_naming_the_key(
    gan_args,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    args, _ = gan_args
    code, _, err = run_in_process(train_gan, [*args, *MSE, "--max-steps", "2"], monkeypatch, capsys)
    assert code == 0, err
    resumed = [*args, *MSE, "--set", "gan.generator_ema_decay=0.9", "--resume", "auto"]
    code, _, err = run_in_process(train_gan, [*resumed, "--max-steps", "3"], monkeypatch, capsys)
    assert code == 2 and "Traceback" not in err
    assert "gan.generator_ema_decay: 0.0 -> 0.9" in err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("gan.generator_ema_decay=1", "gan.generator_ema_decay"),
        ("gan.generator_ema_decay=-0.1", "gan.generator_ema_decay"),
        ("gan.discriminator_warmup_steps=-1", "gan.discriminator_warmup_steps"),
        ("gan.adversarial_ramp_steps=-5", "gan.adversarial_ramp_steps"),
        ("gan.validate_trained_generator=true", "gan.validate_trained_generator"),
        ("pretrain.subpixel_init=nearest", "pretrain.subpixel_init"),
        ("gan.freeze_generator_batchnorm=1", "gan.freeze_generator_batchnorm"),
        ("pretrain.initial_generator=x.pt", "pretrain.subpixel_init"),
    ],
)
def test_bad_values_are_refused_naming_the_key(override: str, key: str) -> None:
    overrides = [override] + (["pretrain.subpixel_init=icnr"] if "initial" in override else [])
    with pytest.raises(ConfigError, match=f"^{key}:"):
        load_config(None, overrides, check_paths=False)


def test_the_defaults_are_the_papers() -> None:
    gan = load_config(None, check_paths=False).gan
    assert gan.generator_ema_decay == 0 and gan.discriminator_warmup_steps == 0
    assert gan.adversarial_ramp_steps == 0 and not gan.freeze_generator_batchnorm
    assert load_config(None, check_paths=False).pretrain.subpixel_init == "default"


def test_the_blur_is_part_of_the_spec_and_a_file_loads_only_as_what_it_declares(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    blurred = Generator(scale=4, num_blocks=1, num_channels=8, upsample_blur=True)
    plain = Generator(scale=4, num_blocks=1, num_channels=8)
    plain.load_state_dict(blurred.state_dict())  # no weights of its own: the same tensors
    lr_image = torch.rand(1, 3, 6, 7)
    assert blurred(lr_image).shape == plain(lr_image).shape == (1, 3, 24, 28)
    assert not torch.allclose(blurred(lr_image), plain(lr_image))
    spec = blurred.spec
    assert GeneratorSpec.from_dict({k: str(v) for k, v in spec.to_dict().items()}) == spec
    old_file = {"scale": 4, "num_blocks": 1, "num_channels": 8}  # written before the option
    assert GeneratorSpec.from_dict(old_file) == plain.spec
    with pytest.raises(ValueError, match="upsample_blur must be true or false"):
        GeneratorSpec.from_dict({**old_file, "upsample_blur": "maybe"})
    state = {"model": spec.to_dict(), "generator": blurred.state_dict()}
    with pytest.raises(CheckpointError, match="2x2 blur"):
        check_spec(state, "blurred.pt", plain.spec)
    loaded = generator_from_checkpoint(state)
    torch.testing.assert_close(loaded(lr_image), blurred.eval()(lr_image))
    export_safetensors(blurred, tmp_path / "blurred.safetensors")
    assert load_generator(tmp_path / "blurred.safetensors").spec == spec


def test_the_blur_is_a_model_config_key() -> None:
    config = load_config(None, ["model.upsample_blur=true"], check_paths=False)
    assert config.model.generator.upsample_blur
    assert Generator.from_spec(config.model.generator).upsample[0].blur.__class__.__name__ == (
        "BoxBlur"
    )


def test_pretraining_can_start_from_given_weights_and_add_the_blur(
    tiny_config_args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    initial = write_generator_checkpoint(tmp_path / "initial.pt")
    args = [*tiny_config_args, "--run-dir", str(tmp_path / "run"), "--max-steps", "1"]
    args += ["--set", f"pretrain.initial_generator={initial}", "--set", "model.upsample_blur=true"]
    code, _, err = run_in_process(
        pretrain, [*args, "--set", "pretrain.lr=1e-5"], monkeypatch, capsys
    )
    assert code == 0, err
    state = torch.load(
        tmp_path / "run" / "checkpoints" / f"srresnet_x4_{TINY_RUN_NAME}_step00000001.pt",
        weights_only=True,
    )
    assert state["model"]["upsample_blur"] is True
    start = torch.load(initial, weights_only=True)["generator"]
    moved = [
        (state["generator"][k] - v).abs().max().item()
        for k, v in start.items()
        if "running" not in k and v.is_floating_point()  # parameters: BN statistics move more
    ]
    assert 0 < max(moved) < 5e-5  # one Adam step of lr 1e-5 from the given weights

    wider = write_generator_checkpoint(tmp_path / "wider.pt", num_channels=16)
    args = [*args, "--set", f"pretrain.initial_generator={wider}", "--fresh"]
    code, _, err = run_in_process(pretrain, args, monkeypatch, capsys)
    assert code == 2 and "pretrain.initial_generator" in err.strip().splitlines()[-1]
