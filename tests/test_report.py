"""Result tables (markdown, LaTeX) with missing values, and the code version of provenance."""

import subprocess

from srgan.eval import provenance
from srgan.eval.latex_table import latex_escape, latex_table
from srgan.eval.report import results_table


def means(psnr=None, ssim=None, niqe=None, grid=None, niqe_images=0, num_images=2) -> dict:
    return {
        "psnr_y": psnr,
        "ssim_y": ssim,
        "psnr_rgb": psnr,
        "ssim_rgb": ssim,
        "niqe": niqe,
        "grid_percent": grid,
        "niqe_images": niqe_images,
        "num_images": num_images,
    }


RESULTS = {
    "Set5": {
        "bicubic": means(28.4321, 0.81114, 8.451, 1.04, 5, 5),
        "my_model&1": means(30.0, 0.85, None, 3.1, 0, 5),
        "HR": means(niqe=5.444, niqe_images=5, num_images=5),
    },
    "Tiny": {
        "bicubic": means(25.0, 0.7, 7.0, 2.0, 1, 3),
        "HR": means(niqe=4.9, niqe_images=1, num_images=3),
    },
}
PROTOCOL = {"scale": 4, "border_crop": 4}


def test_markdown_marks_missing_and_partial_niqe() -> None:
    lines = results_table(RESULTS).splitlines()
    assert "| Set5 | bicubic | 5 | 28.43 | 0.8111 | 8.45 | 1.04 | 28.43 | 0.8111 |" in lines
    assert "| Set5 | my_model&1 | 5 | 30.00 | 0.8500 | — | 3.10 | 30.00 | 0.8500 |" in lines
    assert "| Set5 | HR | 5 | — | — | 5.44 | — | — | — |" in lines
    assert "| Tiny | bicubic | 3 | 25.00 | 0.7000 | 7.00 (1/3) | 2.00 | 25.00 | 0.7000 |" in lines
    assert any(line.startswith("NIQE (k/n)") for line in lines)
    complete = {"Set5": {"bicubic": RESULTS["Set5"]["bicubic"]}}
    assert not any(line.startswith("NIQE (k/n)") for line in results_table(complete).splitlines())


def test_latex_rows_per_method_columns_per_set() -> None:
    lines = latex_table(RESULTS, PROTOCOL).splitlines()
    assert r"\begin{tabular}{lcccccccc}" in lines
    assert r"\cmidrule(lr){2-5} \cmidrule(lr){6-9}" in lines
    rows = lines[lines.index(r"\midrule") + 1 : lines.index(r"\bottomrule")]
    assert rows == [
        r"bicubic & 28.43 & 0.8111 & 8.45 & 1.04 & 25.00 & 0.7000 & 7.00$^{\ast}$ & 2.00 \\",
        # A method of one set only: "--" in the other set's columns.
        r"my\_model\&1 & 30.00 & 0.8500 & -- & 3.10 & -- & -- & -- & -- \\",
        r"HR & -- & -- & 5.44 & -- & -- & -- & 4.90$^{\ast}$ & -- \\",
    ]
    note = lines[lines.index(r"\bottomrule") + 1]
    assert note.startswith(r"\multicolumn{9}{l}{\footnotesize $^{\ast}$ NIQE")
    assert "Tiny (bicubic): 1 of 3; Tiny (HR): 1 of 3" in note
    assert lines[0].startswith("% x4, Y channel (BT.601), 4 px border crop")


def test_latex_escape() -> None:
    assert latex_escape(r"a_b&c%d$e#f{g}h~i^j\k") == (
        r"a\_b\&c\%d\$e\#f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k"
    )


def test_code_version_falls_back_to_the_package_version_without_git(monkeypatch) -> None:
    def no_git(*args: str) -> str:
        raise FileNotFoundError("git")

    monkeypatch.setattr(provenance, "_git", no_git)
    assert set(provenance.code_version()) == {"version"}

    def refusing_git(*args: str) -> str:
        raise subprocess.CalledProcessError(128, ["git", *args])

    monkeypatch.setattr(provenance, "_git", refusing_git)
    assert set(provenance.code_version()) == {"version"}


def test_code_version_of_another_checkout_is_not_ours(monkeypatch, tmp_path) -> None:
    """A package installed in a venv inside some other git checkout reports its version."""
    outputs = {("rev-parse", "--show-toplevel"): str(tmp_path), ("rev-parse", "HEAD"): "f" * 40}
    monkeypatch.setattr(provenance, "_git", lambda *args: outputs[args])
    assert set(provenance.code_version()) == {"version"}
    outputs[("rev-parse", "--show-toplevel")] = str(provenance.PACKAGE_ROOT)
    outputs[("status", "--porcelain")] = ""
    assert provenance.code_version() == {"commit": "f" * 40, "dirty": False}
    outputs[("status", "--porcelain")] = " M srgan/eval/niqe.py"
    assert provenance.code_version() == {"commit": "f" * 40, "dirty": True}
