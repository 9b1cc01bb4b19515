#!/usr/bin/env python3
"""Checks one finished run of examples/mnist_triplet: the files in its output folder against the
data it was given and the flags it was run with. Standard library only. Prints every failed
check (not just the first) and exits 1 if there was one.

It checks that the outputs are well formed and that training did something (the loss falls,
retrieval beats chance and the untrained model); it does not check particular metric values,
which depend on the BLAS build.

Usage: check_outputs.py OUT_DIR DATA_DIR EPOCHS BATCH_SIZE THREADS SEED TRAIN_SAMPLES
"""
import gzip
import json
import math
import os
import struct
import sys
import zlib

OUTPUTS = {"vecs.tsv", "meta.tsv", "metrics.json", "embeddings.png", "projection.tsv", "embeddings.html"}
EMBEDDING_DIM = 256
CHANCE = 0.1  # ten balanced classes
METRIC_KEYS = [
    "dataset", "train_samples", "test_samples", "epochs", "batch_size", "threads", "seed",
    "epoch_seconds", "epoch_loss", "train_samples_per_second", "test_precision_at_1",
    "test_knn_accuracy", "test_map_at_r", "untrained_precision_at_1", "peak_rss_mib", "isa",
    "projection", "projection_seconds", "knn10_accuracy_2d", "knn10_accuracy_embedding",
]

failures = []


def check(ok, message):
    if not ok:
        failures.append(message)
    return ok


def read_labels(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    assert magic == 0x0801 and len(data) == 8 + count, f"{path}: not an IDX label file"
    return list(data[8:])


def check_vecs(path, count):
    with open(path, "r", encoding="ascii") as f:
        text = f.read()
    check(text.endswith("\n"), "vecs.tsv: does not end with a newline")
    lines = text.split("\n")[:-1]
    check(len(lines) == count, f"vecs.tsv: {len(lines)} lines, expected {count} (test samples)")
    bad_rows = []
    for i, line in enumerate(lines):
        fields = line.split("\t")
        if not check(len(fields) == EMBEDDING_DIM,
                     f"vecs.tsv line {i + 1}: {len(fields)} fields, expected {EMBEDDING_DIM}"):
            continue
        try:
            values = [float(x) for x in fields]
        except ValueError as e:
            check(False, f"vecs.tsv line {i + 1}: unparseable value ({e})")
            continue
        if not check(all(math.isfinite(v) for v in values), f"vecs.tsv line {i + 1}: not finite"):
            continue
        norm = math.sqrt(sum(v * v for v in values))
        if abs(norm - 1.0) > 1e-4:
            bad_rows.append((i + 1, norm))
    check(not bad_rows, f"vecs.tsv: {len(bad_rows)} rows without unit L2 norm, "
          f"first (line, norm): {bad_rows[:3]}")


def check_meta(path, labels):
    with open(path, "r", encoding="ascii") as f:
        lines = f.read().split("\n")
    check(lines[-1] == "", "meta.tsv: does not end with a newline")
    lines = lines[:-1]
    check(len(lines) == len(labels), f"meta.tsv: {len(lines)} lines, expected {len(labels)}")
    check(all(line.isdigit() for line in lines), "meta.tsv: a line is not one integer")
    got = [int(x) for x in lines if x.isdigit()]
    mismatch = [i + 1 for i, (a, b) in enumerate(zip(got, labels)) if a != b]
    check(not mismatch, f"meta.tsv: labels differ from the test labels at lines {mismatch[:5]}")


def check_png(path):
    """Signature, IHDR, every chunk's CRC, IEND last, and the inflated IDAT size matches IHDR."""
    with open(path, "rb") as f:
        data = f.read()
    if not check(data[:8] == b"\x89PNG\r\n\x1a\n", "embeddings.png: no PNG signature"):
        return
    pos, chunks = 8, []
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        check(zlib.crc32(kind + body) == crc, f"embeddings.png: bad CRC in chunk {kind!r}")
        chunks.append((kind, body))
        pos += 12 + length
    check(pos == len(data), f"embeddings.png: {len(data) - pos} stray bytes after the chunks")
    if not check(chunks and chunks[0][0] == b"IHDR" and len(chunks[0][1]) == 13,
                 "embeddings.png: the first chunk is not a 13-byte IHDR"):
        return
    check(chunks[-1][0] == b"IEND", "embeddings.png: does not end with IEND")
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    check(200 <= width <= 10000 and 200 <= height <= 10000,
          f"embeddings.png: IHDR size {width}x{height} is not a plausible picture")
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    if not check(channels is not None and depth == 8,
                 f"embeddings.png: unexpected colour type {colour} / depth {depth}"):
        return
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    check(len(pixels) == height * (1 + width * channels),
          f"embeddings.png: IDAT inflates to {len(pixels)} bytes, IHDR implies "
          f"{height * (1 + width * channels)}")


def check_projection(path, count):
    """projection.tsv: one line of two finite tab-separated numbers per test image."""
    with open(path, "r", encoding="ascii") as f:
        lines = f.read().split("\n")
    check(lines[-1] == "", "projection.tsv: no final newline")
    rows = [line.split("\t") for line in lines[:-1]]
    check(len(rows) == count, f"projection.tsv: {len(rows)} lines, expected {count}")
    bad = [i for i, r in enumerate(rows) if len(r) != 2 or not all(math.isfinite(float(v)) for v in r)]
    check(not bad, f"projection.tsv: lines {bad[:5]} are not two finite numbers")
    points = {tuple(r) for r in rows}
    check(len(points) > count // 2, f"projection.tsv: only {len(points)} distinct points of {count}")


def check_page(path, count):
    """embeddings.html: one file, nothing fetched, the data of every point inside."""
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    check(text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>"),
          "embeddings.html: not a whole HTML document")
    check("/*SEMIGRAD_DATA*/" not in text and "const DATA = {" in text, "embeddings.html: data not filled in")
    check("data:image/png;base64," in text, "embeddings.html: no inline sprite")
    check(" src=" not in text and "http" not in text, "embeddings.html: refers to something outside itself")
    start = text.index("const DATA = ") + len("const DATA = ")
    data, _ = json.JSONDecoder().raw_decode(text[start:])
    check(len(data["labels"]) == count and len(data["x"]) == count and len(data["y"]) == count,
          f"embeddings.html: {len(data['labels'])} labels, {len(data['x'])} x, {len(data['y'])} y for {count} points")
    check(len(data["neighbours"]) == data["k"] * count and data["k"] == 10,
          f"embeddings.html: {len(data['neighbours'])} neighbours for {count} points, k {data['k']}")


def check_metrics(path, epochs, batch_size, threads, seed, train_samples, test_samples):
    with open(path, "r", encoding="utf-8") as f:
        m = json.load(f)
    missing = [k for k in METRIC_KEYS if k not in m]
    if not check(not missing, f"metrics.json: missing keys {missing}"):
        return
    expected = {"dataset": "fashion-mnist-e2e", "train_samples": train_samples,
                "test_samples": test_samples, "epochs": epochs, "batch_size": batch_size,
                "threads": threads, "seed": seed}
    for key, value in expected.items():
        check(m[key] == value, f"metrics.json: {key} is {m[key]!r}, expected {value!r}")
    check(m["isa"] in ("portable", "avx2", "avx512"), f"metrics.json: isa is {m['isa']!r}")
    for key in ("epoch_seconds", "epoch_loss"):
        check(isinstance(m[key], list) and len(m[key]) == epochs,
              f"metrics.json: {key} is not a list of {epochs} numbers: {m[key]!r}")
    check(all(isinstance(s, (int, float)) and s > 0 for s in m["epoch_seconds"]),
          f"metrics.json: epoch_seconds not all > 0: {m['epoch_seconds']}")
    loss = m["epoch_loss"]
    if check(all(isinstance(x, (int, float)) and math.isfinite(x) and x > 0 for x in loss),
             f"metrics.json: epoch_loss not all finite and > 0: {loss}"):
        # The semi-hard loss starts near the margin (1.0); ~300 Adam steps cut it well below.
        check(loss[-1] < 0.9 * loss[0], f"metrics.json: the loss did not fall by 10%: {loss}")
    for key in ("train_samples_per_second", "peak_rss_mib"):
        check(isinstance(m[key], (int, float)) and m[key] > 0,
              f"metrics.json: {key} is {m[key]!r}, expected > 0")
    for key in ("test_precision_at_1", "test_knn_accuracy", "test_map_at_r",
                "untrained_precision_at_1"):
        check(isinstance(m[key], (int, float)) and 0 < m[key] <= 1,
              f"metrics.json: {key} is {m[key]!r}, not in (0,1]")
    # Far above chance (0.1). On these 1,600 images the trained model reaches ~0.78.
    for key in ("test_precision_at_1", "test_knn_accuracy"):
        check(m[key] > 5 * CHANCE, f"metrics.json: {key} {m[key]} is not far above chance")
    # The default picture is UMAP of every test point; its map keeps the classes nearly as well
    # as the 256-D embedding does (10-NN vote, leave-one-out; ~0.70 against ~0.75 here).
    check(m["projection"] == "umap", f"metrics.json: projection is {m['projection']!r}, expected 'umap'")
    for key in ("knn10_accuracy_2d", "knn10_accuracy_embedding"):
        check(isinstance(m[key], (int, float)) and m[key] > 5 * CHANCE,
              f"metrics.json: {key} {m[key]!r} is not far above chance")
    check(abs(m["knn10_accuracy_2d"] - m["knn10_accuracy_embedding"]) < 0.1,
          f"metrics.json: 10-NN accuracy in the UMAP map {m['knn10_accuracy_2d']} is not close to the "
          f"embedding's {m['knn10_accuracy_embedding']}")
    check(m["test_precision_at_1"] > m["untrained_precision_at_1"],
          f"metrics.json: training did not improve precision@1 "
          f"({m['untrained_precision_at_1']} -> {m['test_precision_at_1']})")


def main():
    if len(sys.argv) != 8:
        sys.exit(__doc__)
    out, data = sys.argv[1], sys.argv[2]
    epochs, batch_size, threads, seed, train_samples = map(int, sys.argv[3:])
    files = set(os.listdir(out))
    check(files == OUTPUTS, f"{out} holds {sorted(files)}, expected exactly {sorted(OUTPUTS)} "
          "(a temporary file left behind?)")
    labels = read_labels(os.path.join(data, "t10k-labels-idx1-ubyte.gz"))
    if "vecs.tsv" in files:
        check_vecs(os.path.join(out, "vecs.tsv"), len(labels))
    if "meta.tsv" in files:
        check_meta(os.path.join(out, "meta.tsv"), labels)
    if "embeddings.png" in files:
        check_png(os.path.join(out, "embeddings.png"))
    if "projection.tsv" in files:
        check_projection(os.path.join(out, "projection.tsv"), len(labels))
    if "embeddings.html" in files:
        check_page(os.path.join(out, "embeddings.html"), len(labels))
    if "metrics.json" in files:
        check_metrics(os.path.join(out, "metrics.json"), epochs, batch_size, threads, seed,
                      train_samples, len(labels))
    for message in failures:
        print("FAIL " + message)
    if failures:
        sys.exit(1)
    print(f"check_outputs.py: {out} is well formed")


if __name__ == "__main__":
    main()
