#!/usr/bin/python3
"""The PyTorch peer of examples/mnist_triplet: TensorFlow Addons' tutorial "TripletSemiHardLoss
on MNIST" in PyTorch, so scripts/compare-torch can put semigrad's quality and speed beside it.

Same data (IDX .gz files), model, loss, optimiser and metrics as the C++ trainer; it writes the
same JSON keys. It is a measuring stick, not part of the library: nothing in semigrad imports it.
It is not a bit-for-bit replica either: shuffling, initial weights and dropout masks come from
torch's generator, not semigrad's, so the two runs agree in distribution, not in digits.

Run with Debian's interpreter (/usr/bin/python3) and Debian's python3-torch (1.13).

Its best configuration: the model and its inputs in channels_last memory format (NHWC). oneDNN,
which runs PyTorch's CPU convolutions, computes in NHWC-like blocked layouts; given NCHW tensors
every conv reorders its input and output on each call. Measured here (2 threads, batch 32):
training 12-14% more samples/s than NCHW, inference 2-3x. --memory-format contiguous runs NCHW.

Letters: B = batch size, D = embedding size (256), N/C/H/W as in NCHW, Q = queries, R = refs.

Deliberate differences from Keras/TFA, each too small to move a metric:
* torch.optim.Adam adds eps to sqrt(v)/sqrt(1-beta2^t); Keras adds it to sqrt(v) after folding
  the bias corrections into the learning rate (Kingma & Ba 2015, sec. 2, "epsilon hat").
* Flatten runs over (C, H, W), Keras over (H, W, C): a fixed permutation of Dense's input rows,
  and Glorot-uniform draws are i.i.d., so the model family and its initial law are the same.
* The shuffle is a full permutation per epoch (as semigrad's batcher), not tf.data's 1024 buffer.
* A batch without any positive pair gives loss 0 and no gradient (docs/triplet-losses.md sec. 9, as
  semigrad) instead of TFA's NaN; with batch 32 and 10 classes it does not happen in practice.
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import allocator_policy
import cpu_isa

cpu_isa.apply(cpu_isa.isa_from_argv(sys.argv))  # before torch loads: --isa avx2 holds it to AVX2
allocator_policy.apply()  # before torch loads: the same glibc allocator policy as semigrad's programs

import torch  # noqa: E402
import torch.nn as nn
import torch.nn.functional as F

IDX_IMAGES_MAGIC = 0x00000803  # uint8, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # uint8, 1 dimension
NUM_CLASSES = 10
MEMORY_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


# ---------------------------------------------------------------------------------------------
# Data: IDX(.gz) files, every header field checked (as data/idx.cpp checks them).

def read_idx(path, magic, rank):
    """Returns the uint8 array stored in an IDX(.gz) file, shape from its header."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 + 4 * rank:
        raise ValueError(f"{path}: {len(raw)} bytes is too short for an IDX header of rank {rank}")
    (found,) = struct.unpack(">I", raw[:4])
    if found != magic:
        raise ValueError(f"{path}: magic 0x{found:08x}, expected 0x{magic:08x}")
    shape = struct.unpack(f">{rank}I", raw[4:4 + 4 * rank])
    expected = 4 + 4 * rank + int(np.prod(shape))
    if len(raw) != expected:
        raise ValueError(f"{path}: {len(raw)} bytes, header {shape} implies {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)


def dataset_name(folder):
    """As the trainer names it: the first line of scripts/get-data's SOURCE file, else the folder."""
    try:
        with open(os.path.join(folder, "SOURCE")) as f:
            line = f.readline().rstrip("\n")
        if line:
            return line
    except OSError:
        pass
    return os.path.basename(os.path.normpath(folder))


def load_split(folder, prefix):
    """Images [N,1,28,28] float32 in [0,1] and labels [N] int64 for prefix 'train' or 't10k'."""
    images = read_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), IDX_IMAGES_MAGIC, 3)
    labels = read_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"), IDX_LABELS_MAGIC, 1)
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{folder}/{prefix}: images are {images.shape[1:]}, expected (28, 28)")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{folder}/{prefix}: {images.shape[0]} images but {labels.shape[0]} labels")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise ValueError(f"{folder}/{prefix}: label {labels.max()} is not a digit")
    # Scaling the whole set once (the tutorial maps x/255 per batch) keeps the peer's loop lean.
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


# ---------------------------------------------------------------------------------------------
# Model: the tutorial's Keras Sequential, layer for layer.

class TutorialNet(nn.Module):
    """Conv(64,2,same) ReLU MaxPool(2) Dropout(.3) Conv(32,2,same) ReLU MaxPool(2) Dropout(.3)
    Flatten Dense(256) L2-normalise: [N,1,28,28] -> [N,256], 410,208 parameters."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, kernel_size=2)
        self.conv2 = nn.Conv2d(64, 32, kernel_size=2)
        self.dense = nn.Linear(32 * 7 * 7, 256)
        self.dropout = nn.Dropout(0.3)
        # Keras' defaults: Glorot-uniform kernels, zero biases. torch's conv fans are
        # in/out channels times KH*KW, Keras' receptive-field rule gives the same numbers.
        for layer in (self.conv1, self.conv2, self.dense):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    @staticmethod
    def same_pad(x):
        # TF 'same' for an even kernel (2) with stride 1 pads 0 before and 1 after, in H and W.
        return F.pad(x, (0, 1, 0, 1))

    def forward(self, x):
        x = self.dropout(F.max_pool2d(F.relu(self.conv1(self.same_pad(x))), 2))
        x = self.dropout(F.max_pool2d(F.relu(self.conv2(self.same_pad(x))), 2))
        x = self.dense(torch.flatten(x, 1))
        # tf.math.l2_normalize: x * rsqrt(max(sum x^2, 1e-12)); F.normalize clamps the norm instead.
        return x * torch.rsqrt(torch.clamp_min((x * x).sum(dim=1, keepdim=True), 1e-12))


# ---------------------------------------------------------------------------------------------
# Loss: TFA's triplet_semihard_loss, literally (docs/triplet-losses.md sec. 2, 4, 5).
# Gradient conventions match TF's: clamp_min passes the gradient where x >= 0 (TF's maximum,
# ties to the first argument); amin/amax split it evenly over tied extremes (reduce_min/max);
# torch.where sends it to the selected branch only.

def pairwise_distance(embeddings):
    """[B,D] -> [B,B] Euclidean distances by the expansion form, with TFA's safe sqrt."""
    sq = (embeddings * embeddings).sum(dim=1, keepdim=True)
    pdist_squared = torch.clamp_min(sq + sq.t() - 2.0 * embeddings @ embeddings.t(), 0.0)
    error_mask = (pdist_squared <= 0.0).float()
    pdist = torch.sqrt(pdist_squared + error_mask * 1e-16) * (1.0 - error_mask)
    mask_offdiagonals = 1.0 - torch.eye(embeddings.shape[0], dtype=embeddings.dtype)
    return pdist * mask_offdiagonals


def masked_maximum(data, mask):
    """Row-wise max of data where mask is 1; the row min when the mask is empty."""
    axis_minimums = data.amin(dim=1, keepdim=True)
    return ((data - axis_minimums) * mask).amax(dim=1, keepdim=True) + axis_minimums


def masked_minimum(data, mask):
    """Row-wise min of data where mask is 1; the row max when the mask is empty."""
    axis_maximums = data.amax(dim=1, keepdim=True)
    return ((data - axis_maximums) * mask).amin(dim=1, keepdim=True) + axis_maximums


def triplet_semihard_loss(labels, embeddings, margin=1.0):
    """labels [B] int, embeddings [B,D] -> scalar: mean over ordered positive pairs (a,p) of
    max(margin + D[a,p] - D[a,n], 0), n the closest negative farther than p (else the farthest)."""
    batch_size = labels.shape[0]
    pdist_matrix = pairwise_distance(embeddings)
    adjacency = labels[:, None] == labels[None, :]
    adjacency_not = ~adjacency

    # Row p*B + a of the tile holds D[a,:], compared with D[a,p]: the O(B^3) semi-hard mask.
    pdist_matrix_tile = pdist_matrix.repeat(batch_size, 1)
    mask = adjacency_not.repeat(batch_size, 1) & (pdist_matrix_tile > pdist_matrix.t().reshape(-1, 1))
    mask_final = (mask.float().sum(dim=1, keepdim=True) > 0.0).reshape(batch_size, batch_size).t()

    negatives_outside = masked_minimum(pdist_matrix_tile, mask.float()).reshape(batch_size, batch_size).t()
    negatives_inside = masked_maximum(pdist_matrix, adjacency_not.float()).repeat(1, batch_size)
    semi_hard_negatives = torch.where(mask_final, negatives_outside, negatives_inside)

    loss_mat = margin + pdist_matrix - semi_hard_negatives
    mask_positives = adjacency.float() - torch.eye(batch_size, dtype=embeddings.dtype)
    num_positives = mask_positives.sum()
    hinge_sum = torch.clamp_min(loss_mat * mask_positives, 0.0).sum()
    if num_positives.item() == 0:  # TFA: 0/0 = NaN (tensorflow/addons#2447); semigrad: 0.
        return hinge_sum * 0.0
    return hinge_sum / num_positives


# ---------------------------------------------------------------------------------------------
# Metrics: retrieval on L2 embeddings with Euclidean distance, as metrics/retrieval.hpp in
# semigrad (ties go to the lower reference index: argmin and the stable sort keep the first).

def squared_distances(queries, refs):
    """[Q,D], [R,D] -> [Q,R] squared Euclidean distances, in float64 so near-ties rank right."""
    q, r = queries.double(), refs.double()
    return torch.clamp_min((q * q).sum(1, keepdim=True) + (r * r).sum(1)[None, :] - 2.0 * q @ r.t(), 0.0)


def knn_accuracy(test_x, test_y, train_x, train_y):
    """Share of test points whose nearest train embedding has the same label."""
    nearest = squared_distances(test_x, train_x).argmin(dim=1)
    return (train_y[nearest] == test_y).double().mean().item()


def precision_at_1(x, y):
    """Leave-one-out 1-NN within one set (Recall@1 in the metric-learning literature); queries
    whose label no other sample has cannot be right and are left out, as in semigrad."""
    d = squared_distances(x, x)
    d.fill_diagonal_(float("inf"))
    has_r = (y[:, None] == y[None, :]).sum(dim=1) > 1
    return (y[d.argmin(dim=1)] == y)[has_r].double().mean().item()


def map_at_r(x, y):
    """MAP@R within one set, leave-one-out (Musgrave, Belongie & Lim, "A Metric Learning
    Reality Check", ECCV 2020): R = number of other points with the query's label,
    MAP@R = mean over queries of (1/R) sum_{i<=R} P@i * [i-th neighbour relevant].
    Queries with R = 0 have no defined score and are left out."""
    d = squared_distances(x, x)
    d.fill_diagonal_(float("inf"))
    r = (y[:, None] == y[None, :]).sum(dim=1) - 1
    max_r = int(r.max().item())
    if max_r == 0:
        return float("nan")
    order = torch.sort(d, dim=1, stable=True).indices[:, :max_r]
    relevant = (y[order] == y[:, None]).double()
    rank = torch.arange(1, max_r + 1, dtype=torch.float64)
    within_r = (rank[None, :] <= r[:, None]).double()
    precision_at_i = relevant.cumsum(dim=1) / rank
    has_r = r > 0
    per_query = (precision_at_i * relevant * within_r).sum(dim=1)[has_r] / r[has_r]
    return per_query.mean().item()


@torch.no_grad()
def embed(model, x, chunk=1000, memory_format=torch.channels_last):
    model.eval()
    return torch.cat([model(x[i:i + chunk].contiguous(memory_format=memory_format))
                      for i in range(0, x.shape[0], chunk)])


# ---------------------------------------------------------------------------------------------

def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/mnist", help="folder with the four IDX .gz files")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--margin", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--limit-train", type=int, default=0, help="use only the first N training images")
    p.add_argument("--isa", choices=cpu_isa.CHOICES, default="native",
                   help="avx2: only AVX2 kernels in ATen, oneDNN and OpenBLAS (benchmarks/cpu_isa.py)")
    p.add_argument("--memory-format", choices=tuple(MEMORY_FORMATS), default="channels_last",
                   help="the model's and its inputs' layout (channels_last: oneDNN's own, the fastest)")
    p.add_argument("--json", default="", help="write the results here as JSON")
    args = p.parse_args()
    for name in ("epochs", "batch_size", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.limit_train < 0:
        p.error("--limit-train must be >= 0")
    return args


def main():
    args = parse_args()
    kernels = cpu_isa.torch_report(torch)
    cpu_isa.check(args.isa, kernels)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    order_rng = torch.Generator().manual_seed(args.seed)

    train_x, train_y = load_split(args.data, "train")
    test_x, test_y = load_split(args.data, "t10k")
    if args.limit_train:
        train_x, train_y = train_x[:args.limit_train], train_y[:args.limit_train]
    n = train_x.shape[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.data}: {n} train, {test_x.shape[0]} test; {args.memory_format}; --isa {args.isa}: "
          f"{cpu_isa.describe(kernels)}")

    memory_format = MEMORY_FORMATS[args.memory_format]
    model = TutorialNet().to(memory_format=memory_format)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-7)

    epoch_seconds, epoch_loss = [], []
    for epoch in range(1, args.epochs + 1):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(n, generator=order_rng)
        loss_sum = 0.0
        for i in range(0, n, args.batch_size):
            idx = order[i:i + args.batch_size]
            embeddings = model(train_x[idx].contiguous(memory_format=memory_format))
            loss = triplet_semihard_loss(train_y[idx], embeddings, args.margin)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            loss_sum += loss.item() * idx.shape[0]  # Keras' epoch loss: batch-size weighted mean
        seconds = time.perf_counter() - start
        epoch_seconds.append(seconds)
        epoch_loss.append(loss_sum / n)
        print(f"epoch {epoch}/{args.epochs}: loss {loss_sum / n:.4f}, {seconds:.2f} s, "
              f"{n / seconds:.0f} samples/s", flush=True)

    train_emb = embed(model, train_x, memory_format=memory_format)
    test_emb = embed(model, test_x, memory_format=memory_format)
    results = {
        "dataset": dataset_name(args.data),
        "train_samples": n,
        "test_samples": int(test_x.shape[0]),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "margin": args.margin,
        "threads": args.threads,
        "seed": args.seed,
        "isa_option": args.isa,
        "memory_format": args.memory_format,
        "kernels": kernels,
        "epoch_seconds": epoch_seconds,
        "epoch_loss": epoch_loss,
        # As semigrad's metrics.json: all epochs together, total samples over total seconds.
        "train_samples_per_second": n * len(epoch_seconds) / sum(epoch_seconds),
        "test_precision_at_1": precision_at_1(test_emb, test_y),
        "test_knn_accuracy": knn_accuracy(test_emb, test_y, train_emb, train_y),
        "test_map_at_r": map_at_r(test_emb, test_y),
    }
    for key in ("test_precision_at_1", "test_knn_accuracy", "test_map_at_r"):
        print(f"{key}: {results[key]:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
