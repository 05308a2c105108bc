"""Training speed of the BN paper's network on MNIST-5k, against the floor of its matrix multiplies.

    python bench/train_speed.py [--steps 1500] [--repeats 5] [--cnn-steps 200]

Network 784-100-100-100-10, sigmoid, batch 60, plain SGD (lr 0.1), one BLAS thread (bnlib sets
it on import). For float32 and float64 it prints, per training step (median of --repeats runs):
  floor      the step's matrix multiplies alone: 4 forward, 4 dW and 3 dx GEMMs
  plain      a bnlib training step without normalisation
  BN         a bnlib training step with batch norm before each sigmoid
  numpy      the same BN step in bare numpy: the same operations on plain arrays, without
             bnlib's layer objects, input checks or records (one flat parameter buffer too)
and BN/floor, the number the foundation issue targets (≤ 1.8 in float32), and numpy/floor: how
close numpy itself gets, at these sizes, on this machine; BN/numpy is bnlib's own overhead.

Then the same for notebook 10's CNN, bnlib.CNN(channels=(1, 8, 16)) on 28×28 digits, batch 32,
float32: conv 3×3 (padding 1) → [BN] → ReLU → max-pool 2, twice, then Linear(784, 10).
  floor      its GEMMs alone, with the shapes bnlib uses: the two im2col convolutions, the
             Linear layer, their dW products, the Linear dx and stage 2's dx (itself a convolution
             over the padded 16×16 map); stage 1 needs no dx (its input is the image)
  plain, BN  a bnlib training step of the CNN without / with BatchNorm per channel
The rest of a CNN step is memory traffic, not arithmetic (im2col copies, the layout change after
the GEMM, normalisation, ReLU and pooling over 32·8·28·28 values), so CNN/floor is far above the
MLP's: it says how much of the step is not matrix products.
A benchmark, not a test: numbers depend on the machine and on what else runs on it.
"""
import argparse
import platform
import time

import numpy as np
from threadpoolctl import threadpool_info

import bnlib

SIZES = [784, 100, 100, 100, 10]
BATCH = 60


def floor_step_seconds(dtype, steps):
    """Time the GEMMs of one forward+backward step, with the same shapes and data."""
    data = bnlib.load_mnist5k(dtype=dtype)
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((a, b)).astype(dtype) * 0.05 for a, b in zip(SIZES[:-1], SIZES[1:])]
    dWs = [np.empty_like(W) for W in Ws]
    x = data.x_train[:BATCH].copy()
    hs = [x] + [np.empty((BATCH, n), dtype) for n in SIZES[1:]]
    t0 = time.perf_counter()
    for _ in range(steps):
        for l, W in enumerate(Ws):
            np.matmul(hs[l], W, out=hs[l + 1])
        d = hs[-1]
        for l in reversed(range(len(Ws))):
            np.matmul(hs[l].T, d, out=dWs[l])
            if l:
                d = d @ Ws[l].T
    return (time.perf_counter() - t0) / steps


def train_step_seconds(norm, dtype, steps):
    data = bnlib.load_mnist5k(dtype=dtype)
    model = bnlib.MLP(SIZES, activation="sigmoid", norm=norm, dtype=dtype, seed=0)
    h = bnlib.train(model, data, steps=steps, batch_size=BATCH, lr=0.1, record_every=10 * steps,
                    progress=False)
    # the History's time includes the two records (step 0 and the end): subtract them
    t0 = time.perf_counter()
    bnlib.train(model, data, steps=1, batch_size=BATCH, lr=0.1, progress=False)
    one = time.perf_counter() - t0
    return (h.seconds - one) / (steps - 1)


def bare_numpy_step_seconds(dtype, steps, lr=0.1, eps=1e-5, momentum=0.1):
    """The BN network's training step with numpy alone (what bnlib's step costs without bnlib)."""
    data = bnlib.load_mnist5k(dtype=dtype)
    x_train, y_train, N = data.x_train, data.y_train, BATCH
    rng = np.random.default_rng(0)
    shapes = [(a, b) for a, b in zip(SIZES[:-1], SIZES[1:])]                       # W
    shapes += [(b,) for b in SIZES[1:]] + [(b,) for b in SIZES[1:-1]] * 2          # b, γ, β
    sizes = [int(np.prod(s)) for s in shapes]
    flat, dflat = np.zeros(sum(sizes), dtype), np.zeros(sum(sizes), dtype)
    params, grads = ([a.reshape(s) for a, s in zip(np.split(buf, np.cumsum(sizes)[:-1]), shapes)]
                     for buf in (flat, dflat))
    Ws, bs, gammas, betas = params[:4], params[4:8], params[8:11], params[11:14]
    dWs, dbs, dgammas, dbetas = grads[:4], grads[4:8], grads[8:11], grads[11:14]
    for W, (a, b) in zip(Ws, shapes):
        W[...] = rng.standard_normal((a, b)) * np.sqrt(2.0 / (a + b))
    for g in gammas:
        g[...] = 1
    running = [(np.zeros(n, dtype), np.ones(n, dtype)) for n in SIZES[1:-1]]
    batches = bnlib.data.minibatches(len(x_train), N, 0)
    rows = np.arange(N)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = next(batches)
        h, y, saved = x_train[idx], y_train[idx], []
        for l in range(3):                                   # Linear → BN → sigmoid
            z = h @ Ws[l] + bs[l]
            mu = z.sum(axis=0) * (1.0 / N)
            zc = z - mu
            var = (zc * zc).sum(axis=0) * (1.0 / N)
            inv_std = 1.0 / np.sqrt(var + eps)
            x_hat = zc * inv_std
            mean_run, var_run = running[l]
            mean_run *= 1 - momentum
            mean_run += momentum * mu
            var_run *= 1 - momentum
            var_run += (momentum * N / (N - 1)) * var
            s = 1.0 / (1.0 + np.exp(-(gammas[l] * x_hat + betas[l])))
            saved.append((h, x_hat, inv_std, s))
            h = s
        logits = h @ Ws[3] + bs[3]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -log_p[rows, y].sum() / N
        d = np.exp(log_p)
        d[rows, y] -= 1
        d /= N
        np.matmul(h.T, d, out=dWs[3])
        dbs[3][...] = d.sum(axis=0)
        d = d @ Ws[3].T
        for l in (2, 1, 0):
            h_in, x_hat, inv_std, s = saved[l]
            d = d * s * (1.0 - s)
            dbetas[l][...] = d.sum(axis=0)
            dgammas[l][...] = (d * x_hat).sum(axis=0)
            d = (gammas[l] * inv_std) * (d - (dbetas[l] + x_hat * dgammas[l]) * (1.0 / N))
            np.matmul(h_in.T, d, out=dWs[l])
            dbs[l][...] = d.sum(axis=0)
            if l:
                d = d @ Ws[l].T
        flat -= lr * dflat
    assert np.isfinite(loss)
    return (time.perf_counter() - t0) / steps


CNN_CHANNELS, CNN_BATCH = (1, 8, 16), 32


def cnn_floor_step_seconds(steps):
    """Time the GEMMs of one CNN training step (float32), with bnlib's shapes: (out, in) @ (in, positions)."""
    rng = np.random.default_rng(0)
    N = CNN_BATCH
    shapes = [(8, 9, N * 28 * 28), (16, 72, N * 14 * 14), (N, 784, 10),         # forward
              (8, N * 28 * 28, 9), (16, N * 14 * 14, 72), (784, N, 10),         # dW
              (N, 10, 784), (8, 16 * 9, N * 16 * 16)]                           # dx: Linear, stage 2
    pairs = [(rng.standard_normal((a, b)).astype(np.float32), rng.standard_normal((b, c)).astype(np.float32))
             for a, b, c in shapes]
    outs = [np.empty((a, c), np.float32) for a, _, c in shapes]
    t0 = time.perf_counter()
    for _ in range(steps):
        for (p, q), out in zip(pairs, outs):
            np.matmul(p, q, out=out)
    return (time.perf_counter() - t0) / steps


def cnn_train_step_seconds(norm, steps):
    data = bnlib.load_mnist5k(images=True)
    data = bnlib.Dataset(data.x_train, data.y_train, data.x_test[:100], data.y_test[:100], "mnist5k", data.image_shape)
    kwargs = dict(batch_size=CNN_BATCH, lr=0.1, probe_size=8, eval_size=8, progress=False)
    model = bnlib.CNN(CNN_CHANNELS, norm=norm, seed=0)
    h = bnlib.train(model, data, steps=steps, record_every=10 * steps, **kwargs)
    t0 = time.perf_counter()                   # the History's time includes two records: subtract them
    bnlib.train(model, data, steps=1, **kwargs)
    return (h.seconds - (time.perf_counter() - t0)) / (steps - 1)


def cnn_main(steps, repeats):
    print(f"\nCNN {CNN_CHANNELS}, 28×28, batch {CNN_BATCH}, float32, {steps} steps × {repeats} repeats, median per step")
    print(f"{'':8} {'floor µs':>9} {'plain µs':>9} {'BN µs':>8} {'plain/floor':>12} {'BN/floor':>9} {'BN steps/s':>11}")
    runs = {"floor": [], "plain": [], "bn": []}
    for _ in range(repeats):
        runs["floor"].append(cnn_floor_step_seconds(steps))
        runs["plain"].append(cnn_train_step_seconds(None, steps))
        runs["bn"].append(cnn_train_step_seconds("batch", steps))
    floor, plain, bn = (float(np.median(runs[k])) for k in ("floor", "plain", "bn"))
    print(f"{'CNN':8} {floor * 1e6:9.0f} {plain * 1e6:9.0f} {bn * 1e6:8.0f} "
          f"{plain / floor:12.2f} {bn / floor:9.2f} {1 / bn:11.0f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cnn-steps", type=int, default=200, help="steps per CNN run (0: skip the CNN)")
    args = ap.parse_args()
    blas = [(i["internal_api"], i.get("architecture"), i["num_threads"]) for i in threadpool_info()
            if i["user_api"] == "blas"]
    print(f"numpy {np.__version__}, BLAS {blas}, {platform.processor() or platform.machine()}, "
          f"{args.steps} steps × {args.repeats} repeats, median per step")
    print(f"{'dtype':8} {'floor µs':>9} {'plain µs':>9} {'BN µs':>8} {'numpy µs':>9} {'plain/floor':>12} "
          f"{'BN/floor':>9} {'numpy/floor':>12} {'BN/numpy':>9} {'BN steps/s':>11}")
    for dtype in (np.float32, np.float64):
        runs = {"floor": [], "plain": [], "bn": [], "numpy": []}
        for _ in range(args.repeats):   # interleaved, so a slow moment of the machine hits all four
            runs["floor"].append(floor_step_seconds(dtype, args.steps))
            runs["plain"].append(train_step_seconds(None, dtype, args.steps))
            runs["bn"].append(train_step_seconds("batch", dtype, args.steps))
            runs["numpy"].append(bare_numpy_step_seconds(dtype, args.steps))
        floor, plain, bn, bare = (float(np.median(runs[k])) for k in ("floor", "plain", "bn", "numpy"))
        print(f"{np.dtype(dtype).name:8} {floor * 1e6:9.0f} {plain * 1e6:9.0f} {bn * 1e6:8.0f} {bare * 1e6:9.0f} "
              f"{plain / floor:12.2f} {bn / floor:9.2f} {bare / floor:12.2f} {bn / bare:9.2f} {1 / bn:11.0f}")
    if args.cnn_steps:
        cnn_main(args.cnn_steps, args.repeats)


if __name__ == "__main__":
    main()
