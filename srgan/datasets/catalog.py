"""The datasets this repo trains and evaluates on: where each comes from and how it is checked.

Each known set is one `Dataset` in `DATASETS`, filled from one or more `Source`s (an archive to
download, files to fetch one by one, or a local folder). Sets with a SHA-256 manifest
(`srgan/datasets/manifests/`) are checked image by image: the images must be exactly the files the
manifest lists, with those hashes, wherever they came from. `srgan.datasets.install` installs them.
"""

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
# The SHA-256 manifests, package data of srgan.datasets (see pyproject.toml).
MANIFESTS = resources.files("srgan.datasets") / "manifests"


@dataclass(frozen=True)
class Source:
    """One place a dataset's images come from.

    `url` is an archive (zip or tar; its content decides, not its name) whose image members
    matching `member_glob` (fnmatch, case-sensitive, `*` also crosses `/`) are copied flat, so
    the archive's inner folder structure does not matter. With an empty `member_glob`, `url` is
    a folder instead, and each file the manifest lists is fetched from `<url>/<file name>`.

    `manifest` names a file in `srgan/datasets/manifests/` listing every image with its SHA-256;
    the installed images must be exactly those. Without a manifest, `size` and `sha256` check
    the archive when set (leave them empty where no published value exists: every image is then
    opened with PIL instead). `local_folder` is where `--from FOLDER` finds the images:
    `FOLDER/<local_folder>`; only sources with a manifest can be installed from a folder.
    """

    url: str
    member_glob: str = ""
    image_count: int | None = None
    size: int | None = None
    sha256: str = ""
    manifest: str = ""
    local_folder: str = ""


@dataclass(frozen=True)
class Dataset:
    """A set the command line installs by `name` into `<root>/<target>`.

    With `held_out` file names, the images are split: those go to `<target>/valid` and all the
    others to `<target>/train`.
    """

    name: str
    target: str
    sources: tuple[Source, ...]
    held_out: tuple[str, ...] = ()

    @property
    def has_manifests(self) -> bool:
        """Whether every image is checked against a manifest (required for a local install)."""
        return all(source.manifest for source in self.sources)


# Eight BSDS200 photographs that SR291 keeps out of training, to validate on and to choose the
# best checkpoint with, so that the benchmark sets only ever measure. Fixed here so that every
# install, from any source, gives the same split.
SR291_VALID = (
    "100075.jpg",
    "134008.jpg",
    "161062.jpg",
    "188091.jpg",
    "232038.jpg",
    "277095.jpg",
    "361084.jpg",
    "56028.jpg",
)

# Sizes and SHA-256 of the DIV2K archives are those published by TensorFlow Datasets
# (tensorflow_datasets/datasets/div2k/checksums.tsv); ETH Zurich publishes none itself.
# BSD100 and Urban100 come from the Hugging Face copies by eugenesiow, which publish no hash, so
# their images are verified with PIL. T91 is the `Train` folder of the SRCNN authors' training
# code archive, BSDS200 the `images/train` folder of Berkeley's BSDS500 archive; Set5 and Set14
# are single files at pinned commits of the SwinIR and PAN repositories. These four are checked
# per image against the manifests, so no archive hash is needed. Hosts can be slow or blocked on
# some networks: `--mirror` and `--from` are for that case.
_DIV2K = "https://data.vision.ee.ethz.ch/cvl/DIV2K"
_HUGGING_FACE = "https://huggingface.co/datasets/eugenesiow"
_SRCNN_TRAIN = "http://mmlab.ie.cuhk.edu.hk/projects/SRCNN/SRCNN_train.zip"
_BSDS500 = "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz"
_GITHUB = "https://raw.githubusercontent.com"
_SWINIR = f"{_GITHUB}/JingyunLiang/SwinIR/6545850fbf8df298df73d81f3e8cba638787c8bd"
_PAN = f"{_GITHUB}/zhaohengyuan1/PAN/4d045d18592c5771cd3990da88f292812774e538"


_DATASETS = [
    Dataset(
        name="sr291",
        target="SR291",
        sources=(
            Source(
                url=_SRCNN_TRAIN,
                member_glob="*Train/*.bmp",
                manifest="T91.sha256",
                local_folder="T91",
            ),
            Source(
                url=_BSDS500,
                member_glob="BSR/BSDS500/data/images/train/*.jpg",
                manifest="BSDS200.sha256",
                local_folder="BSDS200",
            ),
        ),
        held_out=SR291_VALID,
    ),
    Dataset(
        name="div2k-train-hr",
        target="DIV2K_train_HR",
        sources=(
            Source(
                url=f"{_DIV2K}/DIV2K_train_HR.zip",
                member_glob="*DIV2K_train_HR/*",
                image_count=800,
                size=3530603713,
                sha256="9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",
            ),
        ),
    ),
    Dataset(
        name="div2k-valid-hr",
        target="DIV2K_valid_HR",
        sources=(
            Source(
                url=f"{_DIV2K}/DIV2K_valid_HR.zip",
                member_glob="*DIV2K_valid_HR/*",
                image_count=100,
                size=448993893,
                sha256="20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",
            ),
        ),
    ),
    Dataset(
        name="div2k-valid-lr-x4",
        target="DIV2K_valid_LR_bicubic/X4",
        sources=(
            Source(
                url=f"{_DIV2K}/DIV2K_valid_LR_bicubic_X4.zip",
                member_glob="*X4/*",
                image_count=100,
                size=31505881,
                sha256="a50a5d1c4b88de4e8d300d8fb2b904c52fe93b2b298a4899697760d7cbb6d553",
            ),
        ),
    ),
    Dataset(
        name="set5",
        target="benchmarks/Set5/HR",
        sources=(
            Source(
                url=f"{_SWINIR}/testsets/Set5/HR", manifest="Set5.sha256", local_folder="Set5/HR"
            ),
        ),
    ),
    Dataset(
        name="set14",
        target="benchmarks/Set14/HR",
        sources=(
            Source(
                url=f"{_PAN}/datasets/Set14/HR", manifest="Set14.sha256", local_folder="Set14/HR"
            ),
        ),
    ),
    # "*HR/*" keeps the HR images both in these archives (BSD100_HR/x.png) and in the
    # EDSR-style benchmark layout a mirror might serve (BSD100/HR/x.png, next to LR_bicubic/).
    Dataset(
        name="bsd100",
        target="benchmarks/BSD100/HR",
        sources=(
            Source(
                f"{_HUGGING_FACE}/BSD100/resolve/main/data/BSD100_HR.tar.gz",
                "*HR/*",
                image_count=100,
            ),
        ),
    ),
    Dataset(
        name="urban100",
        target="benchmarks/Urban100/HR",
        sources=(
            Source(
                f"{_HUGGING_FACE}/Urban100/resolve/main/data/Urban100_HR.tar.gz",
                "*HR/*",
                image_count=100,
            ),
        ),
    ),
]

DATASETS: dict[str, Dataset] = {dataset.name: dataset for dataset in _DATASETS}


def read_manifest(name: str) -> dict[str, str]:
    """File name -> SHA-256 from `srgan/datasets/manifests/<name>`
    (lines `<sha256>  <file name>`)."""
    text = (MANIFESTS / name).read_text()
    pairs = (line.split(maxsplit=1) for line in text.splitlines() if line.strip())
    return {file_name: digest for digest, file_name in pairs}


def manifest_sha256(name: str) -> str:
    """Hex SHA-256 of the manifest file `srgan/datasets/manifests/<name>` itself."""
    return hashlib.sha256((MANIFESTS / name).read_bytes()).hexdigest()


def image_count(dataset: Dataset) -> int | None:
    """How many images `dataset` installs, or None where no source says."""
    counts = [
        len(read_manifest(source.manifest)) if source.manifest else source.image_count
        for source in dataset.sources
    ]
    return None if None in counts else sum(counts)


def dataset_folders(dataset: Dataset) -> list[str]:
    """The folders, relative to the install root, that hold the images of `dataset`."""
    if dataset.held_out:
        return [f"{dataset.target}/train", f"{dataset.target}/valid"]
    return [dataset.target]


def missing_data_hint(folder: Path | str) -> str:
    """A message for a missing dataset folder, with the command that fetches it.

    `folder` may also be a dataset NAME from `DATASETS`. A folder that ends with a folder a set
    fills (e.g. `data/DIV2K_train_HR`, `data/SR291/valid`) or with a parent of one (e.g.
    `data/benchmarks`) maps back to the NAMEs that fill it.
    """
    if str(folder) in DATASETS:
        dataset = DATASETS[str(folder)]
        folder, names = Path("data") / dataset.target, [dataset.name]
    else:
        folder = Path(folder)
        parts = folder.parts
        names = []
        for dataset in DATASETS.values():
            for filled in dataset_folders(dataset):
                filled_parts = PurePosixPath(filled).parts
                depths = range(1, len(parts) + 1)
                if any(parts[-depth:] == filled_parts[:depth] for depth in depths):
                    names.append(dataset.name)
                    break
    if not names:
        return (
            f"Dataset folder {folder} not found. Put the images there, or fetch a known set "
            f"with: python scripts/download_data.py NAME (NAME is one of: {', '.join(DATASETS)}; "
            "see data/README.md)"
        )
    return (
        f"Dataset folder {folder} not found. Get it with: "
        f"python scripts/download_data.py {' '.join(names)} "
        "(or run the quickstart: bash run_training.sh configs/quickstart.json)"
    )
