#!/usr/bin/env python3
"""Writes a small MNIST-format folder for the trainer's end-to-end tests: the first TRAIN
training and TEST test images (and labels) of Debian's Fashion-MNIST, as the four gzip'd IDX
files the trainer looks for, plus a SOURCE file naming the set. Standard library only.

It is not a converter for arbitrary data: it copies real images, unchanged, from IDX to IDX,
checking every header it reads so that a damaged source fails here, not inside a test.

Usage: make_idx.py SOURCE_DIR OUT_DIR TRAIN TEST
Exit 77 (meson's "skipped") when SOURCE_DIR lacks one of the four files.
"""
import gzip
import os
import struct
import sys

FILES = {  # name: (rank, unit bytes per item after the count)
    "train-images-idx3-ubyte.gz": 3,
    "train-labels-idx1-ubyte.gz": 1,
    "t10k-images-idx3-ubyte.gz": 3,
    "t10k-labels-idx1-ubyte.gz": 1,
}


def read_first(path, rank, count):
    """The header sizes and the first `count` items of an unsigned-byte IDX .gz file."""
    with gzip.open(path, "rb") as f:
        magic = f.read(4)
        if magic != bytes([0, 0, 0x08, rank]):
            sys.exit(f"make_idx.py: {path}: bad magic {magic.hex()}")
        dims = list(struct.unpack(">" + "I" * rank, f.read(4 * rank)))
        if dims[0] < count:
            sys.exit(f"make_idx.py: {path} holds {dims[0]} items, {count} wanted")
        item = 1
        for d in dims[1:]:
            item *= d
        body = f.read(count * item)
        if len(body) != count * item:
            sys.exit(f"make_idx.py: {path} is truncated")
    dims[0] = count
    return dims, body


def write(path, rank, dims, body):
    header = bytes([0, 0, 0x08, rank]) + struct.pack(">" + "I" * rank, *dims)
    # mtime=0: the same inputs give byte-identical files.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(header + body)


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    src, out, train, test = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    missing = [n for n in FILES if not os.path.isfile(os.path.join(src, n))]
    if missing:
        print(f"make_idx.py: {src} lacks {', '.join(missing)} "
              "(scripts/setup installs dataset-fashion-mnist); skipping", file=sys.stderr)
        sys.exit(77)
    os.makedirs(out, exist_ok=True)
    for name, rank in FILES.items():
        count = train if name.startswith("train") else test
        dims, body = read_first(os.path.join(src, name), rank, count)
        write(os.path.join(out, name), rank, dims, body)
    with open(os.path.join(out, "SOURCE"), "w") as f:
        f.write(f"fashion-mnist-e2e\nThe first {train} training and {test} test images of "
                f"Fashion-MNIST ({src}), written by tests/examples/trainer/make_idx.py.\n")


if __name__ == "__main__":
    main()
