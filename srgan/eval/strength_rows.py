"""The rows of `scripts/evaluate.py --strengths`: an SRGAN checkpoint at each strength of the
network interpolation with its SRResNet (`srgan.inference.interpolation`), each scored as one
more row of the protocol, named "<checkpoint row name> S=<strength>" (e.g. "srgan S=0.5").

Only SRGAN checkpoints (`srgan.inference.pretrained_source.is_gan`: a GAN checkpoint, or an
export that records its SRResNet) are interpolated; any other checkpoint stays one row, which
the perception-distortion picture draws as a reference point.
"""

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from srgan.checkpoint import generator_from_checkpoint
from srgan.files import file_sha256
from srgan.inference.interpolation import interpolate_generators
from srgan.inference.pretrained_source import base_model_path, is_gan, warn_unrecorded_base
from srgan.inference.weights import read_weights
from srgan.models.generator import Generator


@dataclass(frozen=True)
class StrengthCurve:
    """One SRGAN checkpoint's interpolated rows: its row name, file, SRResNet file and
    {strength: row name}."""

    name: str
    checkpoint: Path
    base: Path
    rows: dict[float, str]

    def provenance(self) -> dict:
        """What results.json records of it: both files (the SRResNet's SHA-256 too) and the
        strengths with their rows."""
        return {
            "checkpoint": str(self.checkpoint),
            "base": str(self.base),
            "base_sha256": file_sha256(self.base),
            "rows": {f"{strength:g}": row for strength, row in self.rows.items()},
        }


def strength_row_name(name: str, strength: float) -> str:
    """e.g. "srgan S=0.5" for the checkpoint row "srgan"."""
    return f"{name} S={strength:g}"


def strength_curve(
    name: str,
    checkpoint: Path,
    weights: dict,
    srgan: Generator,
    strengths: list[float],
    base: str | Path | None,
    taken: Collection[str],
) -> tuple[StrengthCurve, dict[str, Generator]]:
    """The curve of the SRGAN `srgan` (row `name`, read from `checkpoint` as `weights`) and
    {row name: interpolated generator}, on the SRGAN's device. The SRResNet is `base` where
    given, else the one the checkpoint records. ValueError where a row would take a name of
    `taken` (the other rows') or of another strength."""
    base_path = base_model_path(weights, checkpoint, base)
    srresnet = generator_from_checkpoint(read_weights(base_path), str(base_path))
    srresnet = srresnet.to(next(srgan.parameters()).device)
    names = (str(base_path), str(checkpoint))
    rows, generators = {}, {}
    for strength in strengths:
        row = strength_row_name(name, strength)
        if row in taken or row in generators:
            raise ValueError(
                f"--strengths: the row {row!r} of {checkpoint} would take the name of another "
                "row: rename the file or change --strengths"
            )
        rows[strength] = row
        generators[row] = interpolate_generators(srresnet, srgan, strength, names)
    warn_unrecorded_base(base_path, weights, checkpoint)
    return StrengthCurve(name, checkpoint, base_path, rows), generators


def model_rows(
    checkpoints: dict[str, tuple[Path, dict, Generator]],
    strengths: list[float] | None,
    base: str | Path | None,
    taken: Collection[str],
) -> tuple[dict[str, Generator], list[StrengthCurve]]:
    """{row name: generator} of the checkpoints ({row name: (path, checkpoint-like dict,
    generator)}), in their order: with `strengths`, each SRGAN's at every strength (see
    `strength_curve`; `taken`: the other rows' names), every other checkpoint as it is; and
    the curves. ValueError where `strengths` are given but no checkpoint is an SRGAN."""
    generators, curves = {}, []
    for name, (path, weights, generator) in checkpoints.items():
        if strengths is None or not is_gan(weights):
            generators[name] = generator
            continue
        others = {*taken, *checkpoints, *generators}
        curve, interpolated = strength_curve(
            name, path, weights, generator, strengths, base, others
        )
        curves.append(curve)
        generators.update(interpolated)
    if strengths is not None and not curves:
        raise ValueError(
            "--strengths: no --checkpoint is an SRGAN (a GAN checkpoint, or an export that "
            "records the SRResNet it was trained from)"
        )
    return generators, curves
