"""results.tex: the evaluation results as a LaTeX table for a paper (booktabs style).

One row per method, four columns per dataset: PSNR-Y (dB), SSIM-Y, NIQE and the grid score
(%). The HR row holds NIQE only. A NIQE mean over only some of a set's images is starred, a
row scored on only some of a set's images (an --outputs folder without the others) has a
dagger on its PSNR, and the notes under the table say how many; a metric nobody has is "--".
The fragment is a `tabular` for the reader's own `table` float; it needs
`\\usepackage{booktabs}`.
"""

from srgan.eval.protocol import REFERENCE

LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
COLUMNS = (("psnr_y", "PSNR", 2, 1.0), ("ssim_y", "SSIM", 4, 1.0), ("niqe", "NIQE", 2, 1.0))
COLUMNS += (("grid_percent", r"Grid (\%)", 2, 1.0),)
MISSING = "--"
PARTIAL_MARK = r"$^{\ast}$"
COVERAGE_MARK = r"$^{\dagger}$"


def latex_escape(text: str) -> str:
    """`text` with LaTeX's special characters escaped (method names hold underscores)."""
    return "".join(LATEX_SPECIALS.get(character, character) for character in text)


def cell(means: dict | None, key: str, digits: int, factor: float) -> str:
    """One number of the table, "--" where missing, starred where NIQE is partial."""
    if means is None or means[key] is None:
        return MISSING
    text = f"{means[key] * factor:.{digits}f}"
    if key == "niqe" and means["niqe_images"] < means["num_images"]:
        text += PARTIAL_MARK
    if key == "psnr_y" and covers_part(means):
        text += COVERAGE_MARK
    return text


def covers_part(means: dict) -> bool:
    """Whether the row was scored on fewer images than its set has."""
    return means["num_images"] < means.get("dataset_images", means["num_images"])


def partial_notes(results: dict) -> list[str]:
    """'Set5 (SRResNet): 4 of 5' for each starred NIQE."""
    return [
        f"{latex_escape(dataset)} ({latex_escape(method)}): "
        f"{means['niqe_images']} of {means['num_images']}"
        for dataset, methods in results.items()
        for method, means in methods.items()
        if means["niqe"] is not None and means["niqe_images"] < means["num_images"]
    ]


def coverage_notes(results: dict) -> list[str]:
    """'Set14 (paper SRGAN): 13 of 14' for each row that covers only some of its set."""
    return [
        f"{latex_escape(dataset)} ({latex_escape(method)}): "
        f"{means['num_images']} of {means['dataset_images']}"
        for dataset, methods in results.items()
        for method, means in methods.items()
        if covers_part(means)
    ]


def latex_table(results: dict, protocol: dict) -> str:
    """The tabular of `results` ({dataset: {method: means}}); `protocol` (scale, border crop)
    goes into its header comment."""
    datasets = list(results)
    methods = list(dict.fromkeys(method for values in results.values() for method in values))
    methods.sort(key=lambda method: method == REFERENCE)  # HR last, below rows of one set only
    width = len(COLUMNS)
    lines = [
        f"% x{protocol['scale']}, Y channel (BT.601), {protocol['border_crop']} px border crop; "
        "written by scripts/evaluate.py",
        r"% needs \usepackage{booktabs}",
        r"\begin{tabular}{l" + ("c" * width) * len(datasets) + "}",
        r"\toprule",
        " & ".join(["", *(rf"\multicolumn{{{width}}}{{c}}{{{latex_escape(d)}}}" for d in datasets)])
        + r" \\",
        " ".join(
            rf"\cmidrule(lr){{{2 + width * i}-{1 + width * (i + 1)}}}" for i in range(len(datasets))
        ),
        " & ".join(["Method", *(label for _ in datasets for _, label, _, _ in COLUMNS)]) + r" \\",
        r"\midrule",
    ]
    for method in methods:
        cells = [
            cell(results[dataset].get(method), key, digits, factor)
            for dataset in datasets
            for key, _, digits, factor in COLUMNS
        ]
        lines.append(" & ".join([latex_escape(method), *cells]) + r" \\")
    lines.append(r"\bottomrule")
    span = 1 + width * len(datasets)
    for mark, text, notes in (
        (PARTIAL_MARK, "NIQE over the images of at least 96 px after the crop", partial_notes),
        (COVERAGE_MARK, "scored on only some of the set's images", coverage_notes),
    ):
        listed = notes(results)
        if listed:
            note = f"{mark} {text}: {'; '.join(listed)}"
            lines.append(rf"\multicolumn{{{span}}}{{l}}{{\footnotesize {note}}} \\")
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"
