"""The configs the README names: each loads and validates, and each says what it claims."""

from pathlib import Path

from srgan.config import load_config

REPO = Path(__file__).resolve().parents[1]
DIV2K_TRAIN_IMAGES = 800


CONFIGS = [REPO / "config.json", *sorted((REPO / "configs").glob("*.json"))]


def test_every_shipped_config_loads_into_a_run_folder_of_its_own() -> None:
    names = [load_config(path, check_paths=False).name for path in CONFIGS]
    assert len(CONFIGS) >= 5 and len(set(names)) == len(names), names


def test_paper_config_runs_the_papers_lengths_and_loss() -> None:
    """10^6 SRResNet steps, then 10^5 GAN steps at 1e-4 and 10^5 at 1e-5 (Section 3.2), batch
    16 of 96 px crops, VGG54 content + 1e-3 adversarial and no extra pixel term (Eq. 3)."""
    config = load_config(REPO / "configs/srgan_paper.json", check_paths=False)
    steps_per_epoch = DIV2K_TRAIN_IMAGES * config.data.crops_per_image // config.pretrain.batch_size
    assert config.pretrain.epochs * steps_per_epoch == 10**6
    assert [(p.epochs * steps_per_epoch, p.lr) for p in config.gan.lr_phases] == [
        (10**5, 1e-4),
        (10**5, 1e-5),
    ]
    assert (config.data.crop_size, config.pretrain.batch_size, config.gan.batch_size) == (
        96,
        16,
        16,
    )
    gan = config.gan
    assert (gan.content_loss, gan.pixel_weight, gan.adversarial_weight) == ("vgg54", 0.0, 1e-3)
    assert config.pretrain.lr == 1e-4 and config.pretrain.lr_schedule == "constant"


def test_config_json_keeps_the_original_schedule() -> None:
    """200 pretraining epochs, 50 + 50 GAN epochs, the pixel term on: what config.json is
    described as (one crop per DIV2K image per epoch)."""
    config = load_config(REPO / "config.json", check_paths=False)
    assert config.pretrain.epochs == 200 and config.data.crops_per_image == 1
    assert [(p.epochs, p.lr) for p in config.gan.lr_phases] == [(50, 1e-4), (50, 1e-5)]
    assert config.gan.pixel_weight == 1.0 and config.gan.content_loss == "vgg54"
