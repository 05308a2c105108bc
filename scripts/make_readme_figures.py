"""The README's figures: what the series shows, before anyone runs a notebook.

    python scripts/make_readme_figures.py        # writes docs/images/*.png (about 20 s)

All three come from bnlib's core (MLP, train, load_mnist5k, plots) on the shipped MNIST-5k,
seeded, so a re-run draws the same pictures:
- figure1.png   the BN paper's Figure 1: (a) test accuracy with and without BN; (b, c) the
                15th/50th/85th percentiles of one sigmoid input of the last hidden layer.
                784-100-100-100-10 sigmoid, batch 60, plain SGD, learning rate 0.1, 2,000 steps.
- drift.png     every hidden layer's sigmoid input (all units: 15th–85th percentile and median)
                over training, with and without BN; same network, learning rate 0.5.
- batch_size.png  how far a batch's mean μ_B and standard deviation σ_B stray from the whole
                training set's μ and σ, against batch size (one unit of the first layer, 2,000
                batches per size, drawn without replacement), with the σ/√B rule.
"""
import pathlib
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import bnlib  # noqa: E402
from bnlib import plots  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images"
SIZES = [784, 100, 100, 100, 10]
BATCH = 60
DPI = 100
LABELS = {"plain": "without BN", "bn": "with BN"}


def net(kind, seed=0):
    return bnlib.MLP(SIZES, activation="sigmoid", norm=None if kind == "plain" else "batch", seed=seed)


def pair(data, lr, steps, record_every, probe_size=200):
    return {kind: bnlib.train(net(kind), data, steps=steps, batch_size=BATCH, lr=lr,
                              record_every=record_every, seed=0, probe_size=probe_size,
                              progress=False)
            for kind in ("plain", "bn")}


def save(fig, name):
    path = OUT / name
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1024:.0f} KB)")


def figure1(data):
    runs = pair(data, lr=0.1, steps=2000, record_every=50)
    fig, (ax_a, ax_b, ax_c) = plt.subplots(1, 3, figsize=(11, 3.5), layout="constrained")
    for kind, h in runs.items():
        ax_a.plot(h.record_steps, h.test_acc, color=plots.COLORS[kind], label=LABELS[kind])
    ax_a.axhline(0.1, color=plots.COLORS["grey"], ls=":", label="chance")
    ax_a.set(xlabel="training step", ylabel="test accuracy", ylim=(0, 1),
             title="(a) test accuracy")
    ax_a.legend(loc="lower right", fontsize=8)
    for ax, kind, tag in ((ax_b, "plain", "(b)"), (ax_c, "bn", "(c)")):
        plots.percentile_bands(ax, runs[kind], layer=-1, unit=0, color=plots.COLORS[kind],
                               label=LABELS[kind])
        ax.set(title=f"{tag} {LABELS[kind]}: one sigmoid input", ylabel="z (last hidden layer, unit 0)")
        ax.legend(loc="lower left", fontsize=7, ncol=2)
    low = min(ax_b.get_ylim()[0], ax_c.get_ylim()[0])
    high = max(ax_b.get_ylim()[1], ax_c.get_ylim()[1])
    for ax in (ax_b, ax_c):
        ax.set_ylim(low - 0.45 * (high - low), high)
    acc = {k: h.test_acc[-1] for k, h in runs.items()}
    fig.suptitle(f"BN paper's Figure 1 on MNIST-5k: after 2,000 steps {acc['bn']:.0%} with BN, "
                 f"{acc['plain']:.0%} without (sigmoid, batch {BATCH}, SGD, learning rate 0.1)",
                 fontsize=10)
    save(fig, "figure1.png")
    return acc


def drift(data):
    runs = pair(data, lr=0.5, steps=1500, record_every=50)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.3), layout="constrained", sharey=True)
    for layer, ax in enumerate(axes):
        for kind, h in runs.items():
            p = h.layers[layer].pre.percentiles
            ax.fill_between(h.record_steps, p[:, 0], p[:, 2], color=plots.COLORS[kind], alpha=0.25,
                            label=f"{LABELS[kind]}: 15th–85th percentile")
            ax.plot(h.record_steps, p[:, 1], color=plots.COLORS[kind], label=f"{LABELS[kind]}: median")
        ax.set(title=f"hidden layer {layer + 1}", xlabel="training step")
    axes[0].set_ylabel("sigmoid input z (all units)")
    axes[-1].legend(loc="upper left", fontsize=7)
    fig.suptitle("Distribution drift: what each sigmoid receives while the network learns "
                 "(MNIST-5k, learning rate 0.5)", fontsize=10)
    save(fig, "drift.png")


def batch_size_spread(data, sizes=(2, 4, 8, 16, 32, 64, 128), count=2000, unit=0):
    _, pre, _ = net("plain").forward(np.asarray(data.x_train, np.float64), keep=True)
    z = pre[0][:, unit]
    mu, sigma = z.mean(), z.std()
    rng = np.random.default_rng(0)
    mean_band, std_band = [], []
    for m in sizes:
        idx = np.argpartition(rng.random((count, len(z))), m, axis=1)[:, :m]   # without replacement
        batches = z[idx]
        mean_band.append(np.percentile((batches.mean(axis=1) - mu) / sigma, [5, 50, 95]))
        std_band.append(np.percentile(batches.std(axis=1) / sigma, [5, 50, 95]))
    mean_band, std_band = np.array(mean_band), np.array(std_band)
    fig, (ax_m, ax_s) = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    b = np.array(sizes, float)
    ax_m.fill_between(b, mean_band[:, 0], mean_band[:, 2], color=plots.COLORS["bn"], alpha=0.3,
                      label="5th–95th percentile over batches")
    ax_m.plot(b, mean_band[:, 1], color=plots.COLORS["bn"], marker="o", label="median")
    ax_m.plot(b, 1.645 / np.sqrt(b), color=plots.COLORS["black"], ls="--", label="±1.645 σ/√B")
    ax_m.plot(b, -1.645 / np.sqrt(b), color=plots.COLORS["black"], ls="--")
    ax_m.set(xscale="log", xlabel="batch size B", ylabel="(μ_B − μ) / σ",
             title="batch mean μ_B around the true mean μ")
    ax_s.fill_between(b, std_band[:, 0], std_band[:, 2], color=plots.COLORS["plain"], alpha=0.3,
                      label="5th–95th percentile over batches")
    ax_s.plot(b, std_band[:, 1], color=plots.COLORS["plain"], marker="o", label="median")
    ax_s.axhline(1.0, color=plots.COLORS["grey"], ls=":", label="σ_B = σ")
    ax_s.set(xscale="log", xlabel="batch size B", ylabel="σ_B / σ",
             title="batch standard deviation σ_B against σ")
    for ax in (ax_m, ax_s):
        ax.set_xticks(b, [str(s) for s in sizes])
        ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(f"Small batches give noisy statistics ({count:,} batches per size; one unit of "
                 f"layer 1, {len(z):,} training images)", fontsize=10)
    save(fig, "batch_size.png")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = bnlib.load_mnist5k()
    acc = figure1(data)
    drift(data)
    batch_size_spread(data)
    print(f"done in {time.perf_counter() - t0:.0f} s; final test accuracy {acc}")


if __name__ == "__main__":
    sys.exit(main())
