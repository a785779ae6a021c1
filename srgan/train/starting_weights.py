"""Where each stage's generator starts: pretraining from a random (or ICNR, or given) start,
GAN training from the pretrained SRResNet (Ledig et al., arXiv 1609.04802, Section 3.2), or a
resumed GAN checkpoint."""

from dataclasses import dataclass, replace
from pathlib import Path

from srgan.checkpoint import (
    CheckpointError,
    check_spec,
    checkpoint_name,
    checkpoint_prefix,
    generator_from_checkpoint,
)
from srgan.config import Config
from srgan.files import file_sha256
from srgan.inference.weights import read_weights
from srgan.models.generator import Generator
from srgan.run.checkpoints import read_stored
from srgan.run.folder import RunPaths
from srgan.run.resume import resume_target


def load_initial_weights(generator: Generator, source: str) -> None:
    """pretrain.initial_generator's weights into `generator`: its spec must be the config's but
    for what has no weights (model.upsample_blur), so a fine-tune can add the blur."""
    initial = generator_from_checkpoint(read_weights(source), source)
    if replace(initial.spec, upsample_blur=generator.spec.upsample_blur) != generator.spec:
        raise CheckpointError(
            f"pretrain.initial_generator: {source} holds a generator with "
            f"{initial.spec.describe()}, but the config asks for {generator.spec.describe()}"
        )
    generator.load_state_dict(initial.state_dict())


def pretrained_generator_path(config: Config, paths: RunPaths) -> Path:
    """gan.pretrained_generator, where "auto" means this run's best (else final) SRResNet."""
    if config.gan.pretrained_generator != "auto":
        return Path(config.gan.pretrained_generator)
    for tag in ("best", "final"):
        path = paths.checkpoint_dir / checkpoint_name(
            "srresnet", config.model.scale, config.name, tag
        )
        if path.is_file():
            return path
    raise CheckpointError(
        f"no pretrained SRResNet found for run '{config.name}' in {paths.checkpoint_dir}: run "
        f"scripts/pretrain.py with this config first, or set gan.pretrained_generator to a path"
    )


def unfinished_pretraining(config: Config, source: Path, step: int | None) -> str | None:
    """A warning when "auto" found only the `_best` of a pretraining without `_final`: GAN
    training then starts from an earlier step than pretraining's end."""
    final = source.with_name(checkpoint_name("srresnet", config.model.scale, config.name, "final"))
    if config.gan.pretrained_generator != "auto" or final.is_file():
        return None
    return (
        f"warning: pretraining has not finished (no {final.name}): GAN training starts from "
        f"its best checkpoint so far, {source} (step {step})"
    )


@dataclass(frozen=True)
class Pretrained:
    """The generator GAN training starts from, where its weights come from (the file's path
    and SHA-256: an export records them, for interpolating back to it), and a warning or None."""

    generator: Generator
    source: str | None
    sha256: str | None
    warning: str | None = None


def generator_to_train(config: Config, paths: RunPaths, resume: str | None) -> Pretrained:
    """The pretrained SRResNet, or, when a GAN checkpoint will be resumed, a new generator
    whose weights that checkpoint overwrites (so the pretrained file is not needed any more)."""
    prefix = checkpoint_prefix("srgan", config.model.scale, config.name)
    target = resume_target(resume, paths.checkpoint_dir, prefix)
    if target is not None and target.step >= 0:
        state = read_stored(target.path) or {}
        generator = Generator.from_spec(config.model.generator).train()
        return Pretrained(generator, state.get("pretrained_from"), state.get("pretrained_sha256"))
    source = pretrained_generator_path(config, paths)
    checkpoint = read_weights(source)  # a .pt checkpoint or a .safetensors export
    check_spec(checkpoint, source, config.model.generator)
    generator = generator_from_checkpoint(checkpoint, source).train()
    warning = unfinished_pretraining(config, source, checkpoint.get("step"))
    return Pretrained(generator, str(source), file_sha256(source), warning)
