"""The general model's gradient per loss: closed form against torch autograd, in one run.

    python benchmarks/bench_gradients.py [--repeat 50] [--pairs 4096] [--batch 128] [--dim 8]

At the bridge's full method-rung size (4096 pairs in blocks of 128, 8 PCA coordinates, 8
outputs) each loss of :data:`dynamics.models.closed_gradients.FORMS` is timed as
``GeneralModel.gradients`` with its norm growth (what the report stage's flows call), once with
its closed form and once with the closed form switched off (torch autograd through
``torch.func.vmap``), on one thread; the two gradients are also compared. Each figure is the
median of ``--repeat`` calls (the machine may be shared).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from dynamics.models.general import GeneralModel, GeneralParams, RunInputs

#: (loss, its hyperparameters, symmetrize) as the bridge's method rungs train them
LOSSES = [
    ("nt_xent", {"temperature": "0.1"}, False),
    ("spectral", {}, False),
    ("barlow_twins", {}, False),
    ("vicreg", {}, False),
    ("liu", {}, True),
    ("byol", {}, False),
]


def median_ms(repeat: int, fn) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--pairs", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--dim", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((args.pairs, args.dim))
    x2 = x1 + 0.3 * rng.standard_normal((args.pairs, args.dim))
    print(f"{args.pairs} pairs in blocks of {args.batch}, {args.dim} dimensions, one thread")
    print(f"{'loss':12} {'closed form':>12} {'autograd':>10} {'ratio':>6} {'max rel diff':>13}")
    for loss, hyper, symmetrize in LOSSES:
        params = GeneralParams(
            dim=args.dim, input_dim=args.dim, n_samples=args.pairs, loss=loss,
            batch_size=args.batch, symmetrize=symmetrize, loss_params=hyper, lr=1e-3,
        )  # fmt: skip
        model = GeneralModel(params, RunInputs(x1, x2))
        blocks = model.layout.unpack(model.initial_state())

        def gradient(m=model, b=blocks):
            return m.gradients(b, drift=True)[0]

        closed, closed_ms = gradient(), median_ms(args.repeat, gradient)
        model._closed = None  # the autograd path
        auto, auto_ms = gradient(), median_ms(args.repeat, gradient)
        diff = max(float(np.abs(closed[k] - auto[k]).max() / np.abs(auto[k]).max()) for k in auto)
        ratio = auto_ms / closed_ms
        print(f"{loss:12} {closed_ms:10.2f}ms {auto_ms:8.2f}ms {ratio:6.1f} {diff:13.1e}")


if __name__ == "__main__":
    main()
