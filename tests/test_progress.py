"""The training progress bar: short enough for one terminal line, validation read against
bicubic."""

from srgan.run.metrics import progress_text

GAN_METRICS = {
    "loss/content": 0.01234,
    "loss/pixel": 0.01234,
    "loss/adversarial": 3.21,
    "loss/generator": 0.015,
    "loss/discriminator": 0.9,
    "loss/d_real": 0.71,
    "loss/d_fake": 0.22,
    "lr": 1e-4,
    "steps_per_second": 1.2,
    "fp16_skipped/generator": 0,
}


def test_gan_progress_fits_a_line_and_names_bicubic() -> None:
    validation = {"valid/psnr_y": 26.661, "valid/bicubic_psnr_y": 25.994, "valid/niqe": 4.2}
    text = progress_text(GAN_METRICS, validation)
    assert text == (
        "mse 0.0123, content 0.0123, adv 3.21, D(real) 0.71, D(fake) 0.22, "
        "valid 26.66 dB (bicubic 25.99)"
    )
    assert len(text) + len("gan:  40%|####      | 1354/3384 [18:48<28:11,  1.20it/s, ]") < 160


def test_pretraining_progress_before_the_first_validation() -> None:
    assert progress_text({"loss/pixel": 0.004567, "lr": 2e-3}, {}) == "mse 0.00457"
