"""Unique names for an evaluation's rows and datasets, so no result is dropped or mislabelled.

A name derived from a path (a checkpoint's file stem, a dataset's folder name) that equals a
fixed name (a baseline such as `bicubic`, the HR row, an --outputs NAME) or another derived
name gets its parent folders prepended, as few as make it unique: checkpoints r1/model.pt and
r2/model.pt are the rows "r1/model" and "r2/model", checkpoints/bicubic.pt is
"checkpoints/bicubic". A clash no parent folder settles (the same path given twice, model.pt
and model.safetensors of one folder, a file at the top of the file system) is refused with a
ValueError naming the paths.
"""

import os
from collections import Counter
from collections.abc import Collection
from pathlib import Path

from srgan.eval.protocol import dataset_name


def name_parts(path: Path) -> tuple[str, ...]:
    """The folders and the name of `path` made absolute ('..' resolved, links kept), the root
    left out: the pieces a derived name is built from, outermost first."""
    return Path(os.path.abspath(path)).parts[1:]


def unique_names(
    named: list[Path], given: list[Path], fixed: Collection[str], option: str
) -> list[str]:
    """One name per path of `named`: its last part, with as many parent folders as make it
    differ from every other path's name and from the `fixed` names. A clash that cannot be
    settled is a ValueError naming the `given` path (as the user wrote it) and its `option`."""
    parts = [name_parts(path) for path in named]
    for index, path_parts in enumerate(parts):
        if path_parts in parts[:index]:
            first = given[parts.index(path_parts)]
            if name_parts(first) == name_parts(given[index]):
                raise ValueError(f"{option} {given[index]} is given twice")
            raise ValueError(f"{option} {first} and {given[index]} would share one name")
    depths = [1] * len(parts)
    while True:
        names = [
            "/".join(path_parts[-depth:]) for path_parts, depth in zip(parts, depths, strict=True)
        ]
        counts = Counter(names)
        clashing = [i for i, name in enumerate(names) if counts[name] > 1 or name in fixed]
        if not clashing:
            return names
        growing = [i for i in clashing if depths[i] < len(parts[i])]
        if not growing:  # only whole paths are left, which differ from each other: a fixed name
            index = clashing[0]
            raise ValueError(
                f"{option} {given[index]} would be named {names[index]!r}, the name of "
                "another row: rename or move the file"
            )
        for index in growing:
            depths[index] += 1


def checkpoint_names(checkpoints: list[Path], fixed: Collection[str]) -> list[str]:
    """Row names of the checkpoints: their file stems, made unique (see the module docstring)."""
    named = [path.with_suffix("") for path in checkpoints]
    return unique_names(named, checkpoints, fixed, "--checkpoint")


def dataset_names(folders: list[Path]) -> list[str]:
    """Names of the --data folders: `dataset_name` ('Set5' for Set5/ and Set5/HR/), made
    unique by the folders above it (a/Set5, b/Set5)."""
    named_folders = []
    for folder in folders:
        folder = Path(os.path.abspath(folder))
        named_folders.append(folder if dataset_name(folder) == folder.name else folder.parent)
    return unique_names(named_folders, folders, (), "--data")
