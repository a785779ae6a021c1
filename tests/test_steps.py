"""One optimizer step of each stage (Ledig et al., Section 3.2), with tiny networks on the CPU.

gan_step updates the generator with the discriminator frozen, then the discriminator on
fake.detach(); each update must leave the other network's weights and gradients alone.
"""

import copy
import functools
from pathlib import Path

import pytest
import torch
from torch import nn

from srgan.data.degradation import degrade_batch
from srgan.models.discriminator import Discriminator
from srgan.models.generator import Generator
from srgan.models.losses import ContentLoss, GanLosses, discriminator_loss
from srgan.run.metrics import MetricsLog
from srgan.run.runtime import Runtime
from srgan.train.networks import Network, build_network
from srgan.train.steps import (
    Batch,
    Degradation,
    gan_step,
    prepare_batch,
    pretrain_step,
)

CPU_FP32 = Runtime(torch.device("cpu"), amp_dtype=None, channels_last=False)
CROP = 32
SCALE = 4


@pytest.fixture
def content_loss(content_losses: dict[str, ContentLoss]) -> ContentLoss:
    return content_losses["vgg22"]


def fixed_batch(seed: int, batch_size: int = 4, step: int = 0) -> Batch:
    """LR in [0, 1] and HR in [-1, 1] of smooth random images, LR degraded from HR."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch_size, 3, CROP // 8, CROP // 8, generator=generator)
    hr_unit = nn.functional.interpolate(coarse, size=(CROP, CROP), mode="bilinear")
    return Batch(step, degrade_batch(hr_unit, SCALE), hr_unit * 2 - 1)


def tiny_networks(seed: int) -> tuple[Generator, Discriminator]:
    torch.manual_seed(seed)
    generator = Generator(scale=SCALE, num_blocks=2, num_channels=8)
    discriminator = Discriminator(crop_size=CROP, num_channels=8)
    return generator.train(), discriminator.train()


def parameters_of(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def unchanged(module: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(p, before[name]) for name, p in module.named_parameters())


def run_gan_step(
    generator: Generator,
    discriminator: Discriminator,
    content_loss: ContentLoss,
    generator_lr: float,
    discriminator_lr: float,
    batch: Batch,
) -> dict[str, torch.Tensor]:
    # lr = 0: Adam moves no weight, so any change comes from the other network's update.
    generator_network = Network.plain(
        generator, torch.optim.Adam(generator.parameters(), lr=generator_lr), CPU_FP32.grad_scaler()
    )
    discriminator_network = Network.plain(
        discriminator,
        torch.optim.Adam(discriminator.parameters(), lr=discriminator_lr),
        CPU_FP32.grad_scaler(),
    )
    loss = GanLosses(content_loss)
    return gan_step(generator_network, discriminator_network, loss, CPU_FP32, batch)


def test_generator_update_leaves_discriminator_unchanged(content_loss: ContentLoss) -> None:
    generator, discriminator = tiny_networks(0)
    generator_before, discriminator_before = parameters_of(generator), parameters_of(discriminator)
    losses = run_gan_step(generator, discriminator, content_loss, 1e-3, 0.0, fixed_batch(0))
    assert not unchanged(generator, generator_before)
    assert unchanged(discriminator, discriminator_before)
    assert all(torch.isfinite(value) and value.dim() == 0 for value in losses.values())
    # The discriminator is trainable again after the step.
    assert all(p.requires_grad for p in discriminator.parameters())


def test_discriminator_update_leaves_generator_unchanged(content_loss: ContentLoss) -> None:
    generator, discriminator = tiny_networks(0)
    generator_before, discriminator_before = parameters_of(generator), parameters_of(discriminator)
    run_gan_step(generator, discriminator, content_loss, 0.0, 1e-3, fixed_batch(0))
    assert unchanged(generator, generator_before)
    assert not unchanged(discriminator, discriminator_before)


def test_gradients_flow_only_where_they_belong(content_loss: ContentLoss) -> None:
    """Each network gets exactly one gradient: G's from the G loss, D's from the D loss.

    A D gradient from the generator loss would mean D was not frozen; a second G gradient
    would mean the D update backpropagated into G (no fake.detach()).
    """
    generator, discriminator = tiny_networks(1)
    batch = fixed_batch(1)
    # What the discriminator must see: the pre-update generator's fake and the real HR.
    reference_generator, reference_discriminator = (
        copy.deepcopy(generator),
        copy.deepcopy(discriminator),
    )
    reference_loss = discriminator_loss(
        reference_discriminator(batch.hr_image),
        reference_discriminator(reference_generator(batch.lr_image)),
    )
    reference_loss.backward()

    received: dict[str, list[torch.Tensor]] = {}
    for prefix, module in (("G", generator), ("D", discriminator)):
        for name, parameter in module.named_parameters():
            key = f"{prefix}.{name}"
            received[key] = []
            parameter.register_hook(lambda grad, key=key: received[key].append(grad.clone()))
    run_gan_step(generator, discriminator, content_loss, 0.0, 0.0, batch)

    for key, grads in received.items():
        assert len(grads) == 1, f"{key} received {len(grads)} gradients"
    for name, parameter in reference_discriminator.named_parameters():
        torch.testing.assert_close(received[f"D.{name}"][0], parameter.grad, msg=name)


def test_pretrain_step_reduces_mse_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    generator = Generator(scale=SCALE, num_blocks=2, num_channels=16).train()
    network = Network.plain(
        generator, torch.optim.Adam(generator.parameters(), lr=2e-3), CPU_FP32.grad_scaler()
    )
    batch = fixed_batch(2)
    with torch.no_grad():
        initial_mse = nn.functional.mse_loss(
            copy.deepcopy(generator)(batch.lr_image), batch.hr_image
        )
    losses = [pretrain_step(network, CPU_FP32, batch)["pixel"].item() for _ in range(20)]
    # The returned loss is the batch MSE of G(lr) against hr before the update.
    assert losses[0] == pytest.approx(initial_mse.item(), rel=1e-5)
    assert losses[-1] < 0.5 * losses[0], losses


class Recorder(nn.Module):
    """Forwards to `module` and records which passes went through this handle."""

    def __init__(self, module: nn.Module, label: str, calls: list[str]) -> None:
        super().__init__()
        self.module, self.label, self.calls = module, label, calls

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        self.calls.append(f"{self.label}:{'grad' if self.module.training else 'eval'}")
        return self.module(image)


def test_each_discriminator_handle_serves_its_pass(content_loss: ContentLoss) -> None:
    """The generator's adversarial term goes through `compiled`, the D update through `ddp`."""
    generator, discriminator = tiny_networks(2)
    calls: list[str] = []
    generator_network = Network.plain(
        generator, torch.optim.Adam(generator.parameters(), lr=1e-3), CPU_FP32.grad_scaler()
    )
    discriminator_network = Network(
        ddp=Recorder(discriminator, "ddp", calls),
        compiled=Recorder(discriminator, "compiled", calls),
        model=discriminator,
        optimizer=torch.optim.Adam(discriminator.parameters(), lr=1e-3),
        scaler=CPU_FP32.grad_scaler(),
    )
    gan_step(
        generator_network, discriminator_network, GanLosses(content_loss), CPU_FP32, fixed_batch(3)
    )
    assert [call.split(":")[0] for call in calls] == ["compiled", "ddp", "ddp"]


def test_compiled_training_uses_the_compiled_discriminator_for_every_pass(
    content_loss: ContentLoss, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With runtime.compile on (one process), all discriminator passes run compiled, and a
    compiled GAN step gives the eager step's losses.

    Dynamo's "eager" backend traces and guards like the default one but skips Inductor's
    code generation (a minute of C++ compilation on a small CPU): which handle runs which pass
    does not depend on the backend.
    """
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    eager_generator, eager_discriminator = tiny_networks(4)
    compiled_generator, compiled_discriminator = (
        copy.deepcopy(eager_generator),
        copy.deepcopy(eager_discriminator),
    )
    generator = build_network(compiled_generator, CPU_FP32, compile=True)
    discriminator = build_network(compiled_discriminator, CPU_FP32, compile=True)
    assert isinstance(discriminator.compiled, torch._dynamo.eval_frame.OptimizedModule)
    assert discriminator.compiled is discriminator.ddp
    assert discriminator.model is compiled_discriminator

    eager = [build_network(m, CPU_FP32) for m in (eager_generator, eager_discriminator)]
    for network in (generator, discriminator, *eager):
        for group in network.optimizer.param_groups:
            group["lr"] = 1e-3
    batch = fixed_batch(4)
    compiled_losses = gan_step(generator, discriminator, GanLosses(content_loss), CPU_FP32, batch)
    eager_losses = gan_step(*eager, GanLosses(content_loss), CPU_FP32, batch)
    for name, value in eager_losses.items():
        torch.testing.assert_close(compiled_losses[name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_fp16_skipped_steps_are_counted_and_a_run_skipping_all_is_reported(
    capsys: pytest.CaptureFixture,
) -> None:
    """With loss scaling on, a step whose gradients overflow is skipped by the scaler; the
    step reports it and the metrics log counts it (GradScaler runs on the CPU too)."""
    torch.manual_seed(0)
    generator = Generator(scale=SCALE, num_blocks=2, num_channels=8).train()
    scaler = torch.amp.GradScaler("cpu")
    network = Network.plain(generator, torch.optim.Adam(generator.parameters()), scaler)
    batch = fixed_batch(5)
    before = parameters_of(generator)
    losses = pretrain_step(network, CPU_FP32, batch)
    assert losses["skipped_generator"].item() == 0.0 and not unchanged(generator, before)

    before = parameters_of(generator)
    overflowing = network.update(
        nn.functional.mse_loss(generator(batch.lr_image), batch.hr_image) * 1e38 * 1e38
    )
    assert overflowing.item() == 1.0 and unchanged(generator, before)

    log = MetricsLog(Path("unused.jsonl"), "pretrain")
    for skipped in (1.0, 1.0, 1.0):
        log.add({"pixel": torch.tensor(0.1), "skipped_generator": torch.tensor(skipped)})
    metrics = log.summarize(3, "nothing was saved")
    assert metrics == {"loss/pixel": pytest.approx(0.1), "fp16_skipped/generator": 3}
    log.warn_if_all_skipped(metrics, steps=3)
    assert "skipped all 3 generator steps" in capsys.readouterr().err
    log.warn_if_all_skipped({"fp16_skipped/generator": 2}, steps=3)
    assert capsys.readouterr().err == ""


def test_prepare_batch_gives_the_papers_ranges_and_degrades_on_the_device() -> None:
    hr_uint8 = torch.randint(0, 256, (2, 3, CROP, CROP), dtype=torch.uint8)
    batch = prepare_batch(hr_uint8, 7, CPU_FP32, Degradation(SCALE))
    assert batch.step == 7
    torch.testing.assert_close(batch.hr_image, hr_uint8.float() / 255 * 2 - 1)
    assert batch.hr_image.min() >= -1 and batch.hr_image.max() <= 1
    torch.testing.assert_close(batch.lr_image, degrade_batch(hr_uint8.float() / 255, SCALE))
    assert batch.lr_image.shape == (2, 3, CROP // SCALE, CROP // SCALE)
