#!/usr/bin/python3
"""Where one training step's time goes, semigrad beside PyTorch, in one run, drawn as bars.

The step is the tutorial's (batch 32: forward, semi-hard triplet loss, backward, Adam) on the
same kind of synthetic batch on both sides (class-dependent bright rows, as bench_train_step).
Its four parts are timed the same way on both sides, with a wall clock around each, averaged
over --steps steps after 20 warm-up steps:
  forward   the model's forward, graph recorded
  loss      the loss's forward
  backward  everything backward (the loss's backward included)
  optimiser zeroing the gradients and Adam's update
semigrad's figures come from its own profiler (`bench_train_step --parts_json`, tensor/profile.hpp),
fused (the default) and unfused (`--no-fuse`); PyTorch's from time.perf_counter() around each part
(the CPU runs it synchronously), its model and batch in channels_last layout, its fastest
(benchmarks/torch_mnist_triplet.py). The peers alternate --rounds times; each part's best mean
is kept.

Usage: /usr/bin/python3 benchmarks/step_parts_torch.py --cpp build/benchmarks/bench_train_step
           [--threads 2] [--rounds 3] [--steps 200] [--plot step-parts.png] [--json out.json]
Needs python3-torch, and python3-matplotlib for --plot (scripts/bench-figures installs both).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import allocator_policy  # noqa: E402

allocator_policy.apply()  # before torch loads: the same glibc allocator policy as semigrad's programs

import torch  # noqa: E402

from torch_mnist_triplet import TutorialNet, triplet_semihard_loss  # noqa: E402

PARTS = ("forward", "loss", "backward", "optimiser")
BATCH = 32


def synthetic_batch(generator):
    """[32,1,28,28] images in [0,1]: row band (row/28 % 10 == label) at 0.9, elsewhere noise."""
    labels = torch.arange(BATCH) % 10
    rows = (torch.arange(784) // 28) % 10
    images = 0.1 * torch.rand(BATCH, 784, generator=generator)
    images[rows[None, :] == labels[:, None]] = 0.9
    return images.view(BATCH, 1, 28, 28), labels


def torch_parts(model, optimiser, images, labels, steps):
    """Mean ms per step of each part over `steps` steps."""
    totals = dict.fromkeys(PARTS, 0.0)
    clock = time.perf_counter
    for _ in range(steps):
        t0 = clock()
        embeddings = model(images)
        t1 = clock()
        loss = triplet_semihard_loss(labels, embeddings)
        t2 = clock()
        loss.backward()
        t3 = clock()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        t4 = clock()
        for part, seconds in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            totals[part] += seconds
    return {part: 1e3 * seconds / steps for part, seconds in totals.items()}


def semigrad_parts(binary, threads):
    """{"fused": {part: ms}, "unfused": {...}, "isa": .., "openblas_core": ..} from one run."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "parts.json")
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        subprocess.run([binary, "--benchmark_filter=NONE", f"--parts_json={path}"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(path) as f:
            report = json.load(f)
    for variant in ("fused", "unfused"):
        parts = report[variant]["parts"]
        parts["optimiser"] = parts.pop("Adam")
        report[variant] = {part: parts[part] for part in PARTS}
    return report


def plot(rows, title, path):
    """Horizontal stacked bars, one per peer, a segment per part labelled with its ms."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"forward": "#4c72b0", "loss": "#dd8452", "backward": "#55a868", "optimiser": "#c44e52"}
    fig, ax = plt.subplots(figsize=(8, 1.3 + 0.7 * len(rows)), dpi=100)
    names = [name for name, _ in rows]
    for y, (_, parts) in enumerate(rows):
        left = 0.0
        for part in PARTS:
            width = parts[part]
            ax.barh(y, width, left=left, color=colours[part], label=part if y == 0 else None)
            if width > 0.06 * sum(parts.values()):
                ax.text(left + width / 2, y, f"{width:.1f}", ha="center", va="center", color="white", fontsize=8)
            left += width
        ax.text(left, y, f"  {left:.1f} ms", va="center", fontsize=9)
    ax.set_yticks(range(len(rows)), names)
    ax.invert_yaxis()
    ax.set_xlabel("ms per training step (batch 32)")
    ax.set_xlim(0, 1.18 * max(sum(p.values()) for _, p in rows))
    ax.set_title(title, fontsize=10)
    ax.legend(ncol=4, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False)
    fig.tight_layout()
    fig.savefig(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpp", required=True, help="path of bench_train_step")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--plot", help="draw the bars into this PNG")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    if not os.access(a.cpp, os.X_OK):
        sys.exit(f"error: --cpp {a.cpp}: not an executable (build it: ninja -C build benchmarks/bench_train_step)")
    if a.threads < 1 or a.rounds < 1 or a.steps < 1:
        sys.exit("error: --threads, --rounds and --steps must be at least 1")

    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    images, labels = synthetic_batch(torch.Generator().manual_seed(42))
    images = images.contiguous(memory_format=torch.channels_last)
    model = TutorialNet().to(memory_format=torch.channels_last).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    torch_parts(model, optimiser, images, labels, 20)  # warm-up: oneDNN primitives, allocator

    best = {"PyTorch": None, "semigrad fused": None, "semigrad unfused": None}
    keep = lambda old, new: new if old is None else {p: min(old[p], new[p]) for p in PARTS}  # noqa: E731
    report = {}
    for r in range(a.rounds):
        report = semigrad_parts(a.cpp, a.threads)
        best["semigrad fused"] = keep(best["semigrad fused"], report["fused"])
        best["semigrad unfused"] = keep(best["semigrad unfused"], report["unfused"])
        best["PyTorch"] = keep(best["PyTorch"], torch_parts(model, optimiser, images, labels, a.steps))
        print(f"round {r + 1}/{a.rounds}: load {os.getloadavg()[0]:.2f}", file=sys.stderr)

    print(f"{'ms per step':<18}" + "".join(f"{p:>11}" for p in PARTS) + f"{'total':>10}")
    for name, parts in best.items():
        print(f"{name:<18}" + "".join(f"{parts[p]:>11.2f}" for p in PARTS) + f"{sum(parts.values()):>10.2f}")
    ratio = sum(best["PyTorch"].values()) / sum(best["semigrad fused"].values())
    print(f"PyTorch / semigrad fused: {ratio:.2f}x  ({a.threads} threads, semigrad's {report['isa']} path, "
          f"OpenBLAS {report['openblas_core']} kernels, torch {torch.__version__})")
    if a.plot:
        title = (f"One training step, batch 32, {a.threads} threads, semigrad's {report['isa']} path:\n"
                 f"PyTorch {torch.__version__.split('a')[0]} takes {ratio:.1f}x semigrad's time")
        plot([(name, best[name]) for name in ("semigrad fused", "semigrad unfused", "PyTorch")], title, a.plot)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"threads": a.threads, "isa": report["isa"], "openblas_core": report["openblas_core"],
                       "ms_per_step": best, "ratio": ratio}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
