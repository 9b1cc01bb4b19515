#!/usr/bin/python3
"""The triplet semi-hard loss (TensorFlow Addons' semantics, docs/triplet-losses.md) in PyTorch, with the
same sort-based O(B^2 log B) mining as losses/triplet.cpp, timed forward + backward at the
batch sizes of benchmarks/bench_triplet.cpp (D = 256, 10 classes, L2-normalised random
embeddings), so the two can be put side by side.

This is PyTorch at its best for this algorithm: as many threads as semigrad (--threads, 2 by
default), fully vectorised (one sort of every row's negatives, one batched searchsorted for every
positive pair, gathers), no Python loop over anchors, autograd for the backward. It is a measuring stick, not part of the
library. Before timing it checks itself against a TFA-style loop reference at B = 32.

For the picture of how the two algorithms grow, it also times TFA's own algorithm as TFA writes
it (the tutorial's loss, benchmarks/torch_mnist_triplet.py: [B*B, B] masked tiles, O(B^3) time and
memory) up to B = 512 (at 1024 one tile is 4 GiB), and reads semigrad's literal O(B^3) port from
bench_triplet (BM_SemihardLiteral, values and gradients, B <= 512). --plot draws all four on
log-log axes, where O(B^2 log B) and O(B^3) are lines of slope about 2 and 3.

Run with Debian's interpreter and python3-torch 1.13 (python3-matplotlib for --plot):
    /usr/bin/python3 benchmarks/triplet_torch.py
    /usr/bin/python3 benchmarks/triplet_torch.py --cpp build/benchmarks/bench_triplet   # + ratios
    /usr/bin/python3 benchmarks/triplet_torch.py --cpp build/benchmarks/bench_triplet --plot loss-vs-batch.png
    /usr/bin/python3 benchmarks/triplet_torch.py --cpp build/benchmarks/bench_triplet --isa avx2   # both peers AVX2-only
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import allocator_policy  # noqa: E402
import cpu_isa  # noqa: E402

allocator_policy.apply()  # before torch loads: the same glibc allocator policy as semigrad's programs
cpu_isa.apply(cpu_isa.isa_from_argv(sys.argv))  # before torch loads; bench_triplet inherits it

import torch  # noqa: E402

from torch_mnist_triplet import triplet_semihard_loss as tfa_literal_loss  # noqa: E402

BATCH_SIZES = [32, 256, 512, 1024, 2048, 4096]
LITERAL_BATCH_SIZES = [32, 64, 128, 256, 512]  # TFA's O(B^3) tiles: 512 MiB each at 512
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


def time_step(B, generator, min_seconds, loss=triplet_semihard_loss):
    """Median ms of forward + backward."""
    x, labels = batch(B, generator)
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_seconds and len(times) < 50):
        leaf = x.clone().requires_grad_(True)
        t0 = time.perf_counter()
        loss(leaf, labels).backward()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def cpp_times(binary):
    """{"fast": {B: ms}, "literal": {B: ms}, "kernels": what it ran} from one run of bench_triplet."""
    out = subprocess.run([binary, "--benchmark_filter=BM_Semihard(Fast|Literal)", "--benchmark_format=json",
                          "--benchmark_min_time=1"], check=True, capture_output=True, text=True).stdout
    report = json.loads(out[out.index("{"):])
    context = report["context"]
    times = {"fast": {}, "literal": {}, "kernels": (context.get("semigrad_isa", "?"), context.get("openblas_core", "?"))}
    for b in report["benchmarks"]:
        name, size = b["name"].split("/")[:2]
        times["literal" if name.endswith("Literal") else "fast"][int(size)] = b["real_time"]
    return times


def plot(series, path):
    """series: [(label, {B: ms}, style)] on log-log axes, with B^2 and B^3 guide slopes."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.6), dpi=100)
    for label, times, style in series:
        sizes = sorted(times)
        ax.plot(sizes, [times[b] for b in sizes], style, label=label, markersize=5)
    fast = series[0][1]
    b0 = min(fast)
    for power, label in ((2, "slope 2 (B^2)"), (3, "slope 3 (B^3)")):
        ref = [b0, max(BATCH_SIZES)]
        ax.plot(ref, [fast[b0] * (b / b0) ** power for b in ref], ":", color="grey", linewidth=1)
        ax.annotate(label, (ref[1] / 2.2, fast[b0] * (ref[1] / 2.2 / b0) ** power), fontsize=8, color="grey")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_ylim(min(fast.values()) / 2, 2e5)
    ax.set_xlabel("batch size B (D = 256, 10 classes)")
    ax.set_ylabel("ms per forward + backward")
    ax.set_title(f"Triplet semi-hard loss, {torch.get_num_threads()} threads", fontsize=10)
    ax.grid(True, which="major", linewidth=0.3)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpp", help="path of bench_triplet: also time it and print the ratios")
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch's and bench_triplet's threads")
    parser.add_argument("--plot", help="draw every series on log-log axes into this PNG")
    parser.add_argument("--isa", choices=cpu_isa.CHOICES, default="native",
                        help="avx2: hold both peers to an AVX2-only CPU's kernels (benchmarks/cpu_isa.py)")
    args = parser.parse_args()
    torch_isa = cpu_isa.torch_report(torch)
    cpu_isa.check(args.isa, torch_isa)

    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # for bench_triplet
    generator = torch.Generator().manual_seed(0)
    x, labels = batch(32, generator)
    want, got = loop_reference(x, labels), triplet_semihard_loss(x, labels).item()
    if abs(want - got) > 1e-5:
        sys.exit(f"self-check failed: sort-based {got} vs loop reference {want}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; self-check ok ({got:.6f})")

    cpp_all = cpp_times(args.cpp) if args.cpp else {"fast": {}, "literal": {}}
    cpp = cpp_all["fast"]
    if args.cpp:
        isa, core = cpp_all["kernels"]
        if args.isa == "avx2" and (isa != "avx2" or core != "Haswell"):
            sys.exit(f"error: --isa avx2 did not take effect in {args.cpp}: {isa} path, OpenBLAS {core}")
        print(f"--isa {args.isa}: semigrad {isa} path, OpenBLAS {core} kernels; PyTorch {cpu_isa.describe(torch_isa)}")
    else:
        print(f"--isa {args.isa}: PyTorch {cpu_isa.describe(torch_isa)}")
    print(f"{'B':>6} {'torch ms':>10}" + (f" {'semigrad ms':>12} {'torch/semigrad':>15}" if cpp else ""))
    torch_sorted = {}
    for B in BATCH_SIZES:
        ms = torch_sorted[B] = time_step(B, generator, args.min_seconds)
        line = f"{B:>6} {ms:>10.2f}"
        if B in cpp:
            line += f" {cpp[B]:>12.2f} {ms / cpp[B]:>15.2f}"
        print(line, flush=True)
    if not args.plot:
        return
    print("TFA's literal O(B^3) algorithm:")
    torch_literal = {}
    for B in LITERAL_BATCH_SIZES:
        torch_literal[B] = time_step(B, generator, args.min_seconds, lambda x, y: tfa_literal_loss(y, x))
        print(f"{B:>6} {torch_literal[B]:>10.2f}" + (f" {cpp_all['literal'][B]:>12.2f}" if B in cpp_all["literal"] else ""),
              flush=True)
    series = [("semigrad, sort-based O(B^2 log B)", cpp, "o-"),
              ("PyTorch, same sort-based algorithm", torch_sorted, "s-"),
              ("PyTorch, TFA's algorithm O(B^3)", torch_literal, "^--"),
              ("semigrad, TFA's algorithm O(B^3)", cpp_all["literal"], "v--")]
    plot([s for s in series if s[1]], args.plot)


if __name__ == "__main__":
    main()
