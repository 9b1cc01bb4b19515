#!/usr/bin/python3
"""The triplet semi-hard loss (TensorFlow Addons' semantics, docs/triplet-losses.md) in PyTorch, with the
same sort-based O(B^2 log B) mining as losses/triplet.cpp, timed forward + backward at the
batch sizes of benchmarks/bench_triplet.cpp (D = 256, 10 classes, L2-normalised random
embeddings), so the two can be put side by side.

This is PyTorch at its best for this algorithm: torch.set_num_threads(2), fully vectorised (one
sort of every row's negatives, one batched searchsorted for every positive pair, gathers), no
Python loop over anchors, autograd for the backward. It is a measuring stick, not part of the
library. Before timing it checks itself against a TFA-style loop reference at B = 32.

Run with Debian's interpreter and python3-torch 1.13:
    /usr/bin/python3 benchmarks/triplet_torch.py
    /usr/bin/python3 benchmarks/triplet_torch.py --cpp build/benchmarks/bench_triplet   # + ratios
"""
import argparse
import json
import statistics
import subprocess
import sys
import time

import allocator_policy

allocator_policy.apply()  # before torch loads: the same glibc allocator policy as semigrad's programs

import torch  # noqa: E402

BATCH_SIZES = [32, 256, 512, 1024, 2048, 4096]
DIM = 256
CLASSES = 10


def pairwise_distance(x):
    """TFA's pairwise_distance (L2, not squared): expansion form, clamp, safe sqrt, zero diagonal."""
    sq = (x * x).sum(1, keepdim=True)
    d2 = (sq + sq.t()) - 2.0 * (x @ x.t())
    d2 = d2.clamp_min(0.0)
    zero = d2 <= 0.0
    d = torch.sqrt(d2 + zero.float() * 1e-16) * (~zero).float()
    return d * (1.0 - torch.eye(x.shape[0], dtype=x.dtype))


def triplet_semihard_loss(x, labels, margin=1.0):
    """Per anchor: sort the negatives' distances once, binary-search every positive's distance for
    the smallest strictly greater one, else the largest negative (0 without negatives)."""
    D = pairwise_distance(x)
    B = D.shape[0]
    adjacency = labels[:, None] == labels[None, :]
    negative = ~adjacency
    positive = adjacency & ~torch.eye(B, dtype=torch.bool)
    inf = torch.tensor(float("inf"), dtype=D.dtype)
    sorted_negatives, _ = torch.where(negative, D, inf).sort(dim=1)  # [B, B], +inf at the end
    first_greater = torch.searchsorted(sorted_negatives.detach(), D.detach().contiguous(), right=True)
    has_semihard = first_greater < negative.sum(1, keepdim=True)
    outside = sorted_negatives.gather(1, first_greater.clamp(max=B - 1))
    inside = torch.where(negative, D, -inf).max(1, keepdim=True).values
    inside = torch.where(negative.any(1, keepdim=True), inside, torch.zeros_like(inside))
    semi_hard = torch.where(has_semihard, outside, inside.expand(B, B))
    loss_mat = torch.where(positive, (margin + D - semi_hard).clamp_min(0.0), torch.zeros_like(D))
    num_positives = positive.sum()
    if num_positives == 0:
        return (x * 0.0).sum()  # docs/triplet-losses.md sec. 9, as semigrad: 0 and a zero gradient
    return loss_mat.sum() / num_positives


def loop_reference(x, labels, margin=1.0):
    """TFA's test reference: for each positive pair sort the negatives, first > d_ap else last."""
    D = pairwise_distance(x).tolist()
    y = labels.tolist()
    loss, count = 0.0, 0
    for i in range(len(y)):
        for j in range(len(y)):
            if y[i] != y[j] or i == j:
                continue
            count += 1
            negs = sorted(D[i][k] for k in range(len(y)) if y[k] != y[i])
            chosen = negs[0] if negs else 0.0
            for d in negs:
                chosen = d
                if d > D[i][j]:
                    break
            loss += max(0.0, margin - chosen + D[i][j])
    return loss / count


def batch(B, generator):
    x = torch.randn(B, DIM, generator=generator)
    x = x / x.norm(dim=1, keepdim=True)
    labels = torch.randint(0, CLASSES, (B,), generator=generator)
    return x, labels


def time_step(B, generator, min_seconds):
    x, labels = batch(B, generator)
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_seconds and len(times) < 50):
        leaf = x.clone().requires_grad_(True)
        t0 = time.perf_counter()
        triplet_semihard_loss(leaf, labels).backward()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def cpp_times(binary):
    out = subprocess.run([binary, "--benchmark_filter=BM_SemihardFast", "--benchmark_format=json",
                          "--benchmark_min_time=1"], check=True, capture_output=True, text=True).stdout
    report = json.loads(out[out.index("{"):])
    return {int(b["name"].split("/")[1]): b["real_time"] for b in report["benchmarks"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpp", help="path of bench_triplet: also time it and print the ratios")
    parser.add_argument("--min-seconds", type=float, default=2.0)
    args = parser.parse_args()

    torch.set_num_threads(2)
    generator = torch.Generator().manual_seed(0)
    x, labels = batch(32, generator)
    want, got = loop_reference(x, labels), triplet_semihard_loss(x, labels).item()
    if abs(want - got) > 1e-5:
        sys.exit(f"self-check failed: sort-based {got} vs loop reference {want}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; self-check ok ({got:.6f})")

    cpp = cpp_times(args.cpp) if args.cpp else {}
    print(f"{'B':>6} {'torch ms':>10}" + (f" {'semigrad ms':>12} {'torch/semigrad':>15}" if cpp else ""))
    for B in BATCH_SIZES:
        ms = time_step(B, generator, args.min_seconds)
        line = f"{B:>6} {ms:>10.2f}"
        if B in cpp:
            line += f" {cpp[B]:>12.2f} {ms / cpp[B]:>15.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
