"""The build step that puts the shipped weights into the package; the rest of the package's
description is in pyproject.toml.

The weights are kept once in git, in checkpoints/, where the README and the model card point.
A build (a wheel, `pip install .`) copies each model of the shipped-models table into the
package as srgan/weights/<name>.safetensors, so an installed `srgan-upscale` has its default
model; an sdist carries them in checkpoints/. A copy made at build time, rather than a symlink
in the package, works on every platform and git setting (Windows checkouts make symlinks into
text files). Editable installs read the weights from checkpoints/ directly.
"""

import runpy
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
# Read as a file, not imported: `import srgan` would import torch, which a build has not got.
SHIPPED = runpy.run_path(str(ROOT / "srgan" / "inference" / "shipped_models.py"))
WEIGHT_FILES = [SHIPPED["weights_file_name"](name) for name in SHIPPED["SHIPPED_MODELS"]]


class BuildPyWithWeights(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "srgan" / "weights"
        self.mkpath(str(target))
        for file_name in WEIGHT_FILES:
            self.copy_file(str(ROOT / "checkpoints" / file_name), str(target / file_name))


class SdistWithWeights(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        weights = [f"checkpoints/{file_name}" for file_name in WEIGHT_FILES]
        super().make_release_tree(base_dir, [*files, *weights])


setup(cmdclass={"build_py": BuildPyWithWeights, "sdist": SdistWithWeights})
