"""results.tex: the evaluation results as a LaTeX table for a paper (booktabs style).

One row per method, four columns per dataset: PSNR-Y (dB), SSIM-Y, NIQE and the grid score
(%). The HR row holds NIQE only. A NIQE mean over only some of a set's images is starred and
the note under the table says how many; a metric nobody has is "--". The fragment is a
`tabular` for the reader's own `table` float; it needs `\\usepackage{booktabs}`.
"""

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
COLUMNS += (("grid", r"Grid (\%)", 2, 100.0),)
MISSING = "--"
PARTIAL_MARK = r"$^{\ast}$"


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
    return text


def partial_notes(results: dict) -> list[str]:
    """'Set5 (SRResNet): 4 of 5' for each starred NIQE."""
    return [
        f"{latex_escape(dataset)} ({latex_escape(method)}): "
        f"{means['niqe_images']} of {means['num_images']}"
        for dataset, methods in results.items()
        for method, means in methods.items()
        if means["niqe"] is not None and means["niqe_images"] < means["num_images"]
    ]


def latex_table(results: dict, protocol: dict) -> str:
    """The tabular of `results` ({dataset: {method: means}}); `protocol` (scale, border crop)
    goes into its header comment."""
    datasets = list(results)
    methods = list(dict.fromkeys(method for values in results.values() for method in values))
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
    notes = partial_notes(results)
    if notes:
        note = PARTIAL_MARK + " NIQE over the images of at least 96 px after the crop: "
        span = 1 + width * len(datasets)
        lines.append(rf"\multicolumn{{{span}}}{{l}}{{\footnotesize {note}{'; '.join(notes)}}} \\")
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"
