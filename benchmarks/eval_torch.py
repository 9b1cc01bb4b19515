#!/usr/bin/python3
"""Evaluation forward, semigrad against PyTorch, in one run: the tutorial model embeds the same
test images (an MNIST-format folder) on both sides, dropout off, no autograd graph. semigrad runs
as build/benchmarks/bench_eval (chunks of 32, as the trainer); PyTorch 1.13 (Debian's) under
torch.inference_mode() with the same glibc allocator policy, at each of several chunk sizes, its
best taken (its best configuration). The two alternate --rounds times, best of --repeats passes
each; the ratio is of the best images/s on each side.

Usage: /usr/bin/python3 benchmarks/eval_torch.py --cpp build/benchmarks/bench_eval
           [--data data/fashion-mnist] [--threads 2] [--rounds 3] [--repeats 3] [--json out.json]
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import allocator_policy  # noqa: E402

allocator_policy.apply()  # before torch loads

import torch  # noqa: E402

from torch_mnist_triplet import TutorialNet, load_split  # noqa: E402

TORCH_CHUNKS = (32, 256, 1000, 10000)


def torch_pass_seconds(model, x, chunk):
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, x.shape[0], chunk):
            model(x[i:i + chunk])
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpp", required=True, help="path of bench_eval")
    ap.add_argument("--data", default="data/fashion-mnist")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    if not os.access(a.cpp, os.X_OK):
        sys.exit(f"error: --cpp {a.cpp}: not an executable (build it: ninja -C build benchmarks/bench_eval)")

    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    x, _ = load_split(a.data, "t10k")
    model = TutorialNet().eval()
    torch_pass_seconds(model, x, 256)  # warm-up: oneDNN primitives, allocator
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    semigrad_best, torch_best = float("inf"), {c: float("inf") for c in TORCH_CHUNKS}
    for r in range(a.rounds):
        out = subprocess.run([a.cpp, "--data", a.data, "--threads", str(a.threads),
                              "--repeats", str(a.repeats)], env=env, check=True,
                             capture_output=True, text=True).stdout
        semigrad_best = min(semigrad_best, json.loads(out)["best_seconds"])
        for c in TORCH_CHUNKS:
            for _ in range(a.repeats):
                torch_best[c] = min(torch_best[c], torch_pass_seconds(model, x, c))
        print(f"round {r + 1}: semigrad {semigrad_best:.3f} s, PyTorch best so far "
              f"{min(torch_best.values()):.3f} s", file=sys.stderr)
    n = x.shape[0]
    chunk = min(torch_best, key=torch_best.get)
    result = {
        "images": n, "threads": a.threads,
        "semigrad_images_per_second": n / semigrad_best,
        "torch_images_per_second": n / torch_best[chunk], "torch_best_chunk": chunk,
        "torch_images_per_second_by_chunk": {str(c): n / s for c, s in torch_best.items()},
        "ratio": torch_best[chunk] / semigrad_best,
    }
    print(f"evaluation forward, {n} images, {a.threads} threads: semigrad "
          f"{result['semigrad_images_per_second']:,.0f} images/s, PyTorch {torch.__version__} "
          f"{result['torch_images_per_second']:,.0f} images/s (chunk {chunk}): "
          f"{result['ratio']:.2f}x")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
