"""torch.hub needs only what hubconf.py declares: the package imports, and a shipped model
loads and upscales, in a Python where scikit-image and Pillow (neither declared) cannot be
imported."""

import subprocess
import sys

from conftest import REPO, SCRIPT_ENV, describe

# A meta-path finder that fails every import of the blocked packages, as an environment
# without them would; then the documented hub call and an upscale with the library.
WITHOUT_UNDECLARED = """
import importlib.abc, sys
BLOCKED = ("skimage", "PIL")

class Undeclared(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None

sys.meta_path.insert(0, Undeclared())
import torch
model = torch.hub.load(sys.argv[1], "srresnet_x4_291", source="local")
from srgan import upscale_tensor
sr_image = upscale_tensor(model, torch.rand(1, 3, 6, 5))
print(tuple(sr_image.shape), float(sr_image.min()) >= 0, float(sr_image.max()) <= 1)
print(sorted({name.split(".")[0] for name in sys.modules} & set(BLOCKED)))
"""


def test_hub_loads_and_upscales_without_undeclared_packages() -> None:
    hubconf = (REPO / "hubconf.py").read_text()
    assert 'dependencies = ["torch", "numpy", "scipy", "safetensors", "tqdm"]' in hubconf
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_UNDECLARED, str(REPO)],
        cwd=REPO,
        env=SCRIPT_ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, describe(result)
    assert result.stdout.splitlines() == ["(1, 3, 24, 20) True True", "[]"]
