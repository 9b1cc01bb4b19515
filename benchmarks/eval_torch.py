#!/usr/bin/python3
"""Evaluation forward, semigrad against PyTorch, in one run: the tutorial model embeds the same
test images (an MNIST-format folder) on both sides, dropout off, no autograd graph. semigrad runs
as build/benchmarks/bench_eval (chunks of 32, as the trainer). PyTorch 1.13 (Debian's) runs with
the same glibc allocator policy under torch.inference_mode(), in each of its inference set-ups
at each of several chunk sizes, and its best is taken (its best configuration):
  eager, NCHW            the model as trained by default;
  eager, channels_last   model and images in NHWC, oneDNN's own layout (no reorder per conv);
  TorchScript, frozen    torch.jit.freeze + torch.jit.optimize_for_inference of the traced
                         model: weights prepacked for oneDNN, conv fused with its ReLU.
The two peers alternate --rounds times, best of --repeats passes each; the ratio is of the best
images/s on each side. --isa avx2 holds both peers to an AVX2-only CPU's kernels
(benchmarks/cpu_isa.py); each peer's kernels are printed as it reports them.

Usage: /usr/bin/python3 benchmarks/eval_torch.py --cpp build/benchmarks/bench_eval
           [--data data/fashion-mnist] [--threads 2] [--rounds 3] [--repeats 3] [--isa native|avx2]
           [--json out.json]
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import allocator_policy  # noqa: E402
import cpu_isa  # noqa: E402

cpu_isa.apply(cpu_isa.isa_from_argv(sys.argv))  # before torch loads; bench_eval inherits it
allocator_policy.apply()  # before torch loads

import torch  # noqa: E402

from torch_mnist_triplet import TutorialNet, load_split  # noqa: E402

TORCH_CHUNKS = (32, 64, 256, 1000)  # 10,000 at once was always slowest, by far


def torch_pass_seconds(model, x, chunk):
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, x.shape[0], chunk):
            model(x[i:i + chunk])
    return time.perf_counter() - start


def torch_setups(model, x):
    """{name: (callable, the images it takes)}: PyTorch's ways to run inference on CPU."""
    x_nhwc = x.contiguous(memory_format=torch.channels_last)
    nhwc = TutorialNet().eval()
    nhwc.load_state_dict(model.state_dict())
    nhwc = nhwc.to(memory_format=torch.channels_last)
    with torch.no_grad():
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x[:32])))
        for other in (nhwc(x_nhwc[:100]), frozen(x[:100])):  # the same function, to rounding
            torch.testing.assert_close(other, model(x[:100]), rtol=1e-4, atol=1e-5)
    return {"eager, NCHW": (model, x), "eager, channels_last": (nhwc, x_nhwc),
            "TorchScript, frozen": (frozen, x)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpp", required=True, help="path of bench_eval")
    ap.add_argument("--data", default="data/fashion-mnist")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--isa", choices=cpu_isa.CHOICES, default="native",
                    help="avx2: both peers run only AVX2 kernels (an AVX2-only CPU emulated)")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    if not os.access(a.cpp, os.X_OK):
        sys.exit(f"error: --cpp {a.cpp}: not an executable (build it: ninja -C build benchmarks/bench_eval)")

    torch_isa = cpu_isa.torch_report(torch)
    cpu_isa.check(a.isa, torch_isa)
    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    x, _ = load_split(a.data, "t10k")
    model = TutorialNet().eval()
    setups = torch_setups(model, x)
    for run, images in setups.values():
        torch_pass_seconds(run, images, 256)  # warm-up: oneDNN primitives, allocator
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    semigrad_best = float("inf")
    torch_best = {(name, c): float("inf") for name in setups for c in TORCH_CHUNKS}
    for r in range(a.rounds):
        out = json.loads(subprocess.run([a.cpp, "--data", a.data, "--threads", str(a.threads),
                                         "--repeats", str(a.repeats)], env=env, check=True,
                                        capture_output=True, text=True).stdout)
        semigrad_best = min(semigrad_best, out["best_seconds"])
        semigrad_isa = f"{out['isa']} path, OpenBLAS {out['openblas_core']} kernels"
        if a.isa == "avx2" and (out["isa"] != "avx2" or out["openblas_core"] != "Haswell"):
            sys.exit(f"error: --isa avx2 did not take effect in {a.cpp}: {semigrad_isa}")
        for (name, c) in torch_best:
            run, images = setups[name]
            for _ in range(a.repeats):
                torch_best[name, c] = min(torch_best[name, c], torch_pass_seconds(run, images, c))
        print(f"round {r + 1}: semigrad {semigrad_best:.3f} s, PyTorch best so far "
              f"{min(torch_best.values()):.3f} s", file=sys.stderr)
    n = x.shape[0]
    setup, chunk = min(torch_best, key=torch_best.get)
    result = {
        "images": n, "threads": a.threads, "isa_option": a.isa,
        "semigrad_kernels": semigrad_isa, "torch_kernels": torch_isa,
        "semigrad_images_per_second": n / semigrad_best,
        "torch_images_per_second": n / torch_best[setup, chunk],
        "torch_best_setup": setup, "torch_best_chunk": chunk,
        "torch_images_per_second_by_setup": {
            name: {str(c): n / torch_best[name, c] for c in TORCH_CHUNKS} for name in setups},
        "ratio": torch_best[setup, chunk] / semigrad_best,
    }
    for name in setups:
        print(f"  PyTorch {name:<22}" + "  ".join(
            f"chunk {c}: {n / torch_best[name, c]:>6,.0f}" for c in TORCH_CHUNKS), file=sys.stderr)
    print(f"evaluation forward, {n} images, {a.threads} threads: semigrad "
          f"{result['semigrad_images_per_second']:,.0f} images/s, PyTorch {torch.__version__} "
          f"{result['torch_images_per_second']:,.0f} images/s ({setup}, chunk {chunk}): "
          f"{result['ratio']:.2f}x")
    print(f"  --isa {a.isa}: semigrad {semigrad_isa}; PyTorch {cpu_isa.describe(torch_isa)}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
