"""Where upscaled images go: one output file per input, `<stem><suffix>.<ext>` in the output
folder, never outside it, never over an input, never two inputs onto one output."""

import os
from pathlib import Path

from srgan.data.images import list_images

OUTPUT_FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}  # file extension: PIL format
SEPARATORS = {"/", os.sep, os.altsep} - {None}


def printable(text: object) -> str:
    """`text` with the undecodable bytes of non-UTF-8 file names shown as \\xNN escapes.

    Python keeps such bytes as lone surrogates, which print() refuses to encode: one odd name
    would otherwise end a whole batch.
    """
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def resolved(path: Path, role: str) -> Path:
    """`path.resolve()`; ValueError naming `role` (e.g. --output) where a symlink loop (or
    another OS error) makes that impossible."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as error:  # Python < 3.13 raises RuntimeError for a loop
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{role} {printable(path)} cannot be resolved ({reason})") from None


def _input_files(inputs: list[Path]) -> list[Path]:
    """Files as given and the images of folders; FileNotFoundError for a missing input."""
    files = []
    for path in map(Path, inputs):
        if path.is_dir():
            files += list_images(path)
        elif path.is_file():
            files.append(path)
        elif path.exists():  # reading a FIFO or a device would block or never end
            raise ValueError(f"input {printable(path)} is not a regular file or a folder")
        else:
            raise FileNotFoundError(f"input not found: {printable(path)}")
    return files


def plan_outputs(
    inputs: list[Path], output_dir: Path, suffix: str, extension: str = "png"
) -> list[tuple[Path, Path]]:
    """(input file, output file) pairs: files as given, folders' images, `<stem><suffix>.<ext>`.

    Raises ValueError when `suffix` holds a path separator (its output would leave
    `output_dir`), when `output_dir` cannot be resolved (a symlink loop), when two inputs would
    write the same output or an output would replace an input, and FileNotFoundError for a
    missing input. `extension` is one of OUTPUT_FORMATS.
    """
    if extension not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {extension!r}; choose from {list(OUTPUT_FORMATS)}")
    if any(separator in suffix for separator in SEPARATORS):
        raise ValueError(
            f"--suffix {suffix!r} would write outside --output {printable(output_dir)}: a "
            "suffix is part of a file name, without '/'"
        )
    resolved(Path(output_dir), "--output")  # a symlink loop is named as the folder's
    files = _input_files(inputs)
    pairs, writers = [], {}
    input_files = {resolved(file, "input"): file for file in files}
    for file in dict.fromkeys(files):  # a file given twice is upscaled once
        output = Path(output_dir) / f"{file.stem}{suffix}.{extension}"
        key = resolved(output, "output")
        if key in input_files:
            raise ValueError(
                f"{printable(output)} would overwrite the input {printable(input_files[key])}; "
                "choose another --output or --suffix"
            )
        if key in writers and writers[key].resolve() != file.resolve():
            raise ValueError(
                f"{printable(writers[key])} and {printable(file)} would both be written to "
                f"{printable(output)}"
            )
        if key not in writers:
            writers[key] = file
            pairs.append((file, output))
    return pairs
