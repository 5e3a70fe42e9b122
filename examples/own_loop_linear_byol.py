"""Linear BYOL in a plain PyTorch loop, recorded through the toolkit's API (no empirical.train).

    python examples/own_loop_linear_byol.py --out runs/own_byol
    python -m dynamics.simulate linear_byol --from-run runs/own_byol --out results/own_pred.nc

Tian et al.'s setting: W (d x k) on the first k principal components of Fashion-MNIST (scaled to
unit mean variance), a linear predictor W_p, an EMA target W_a, views x' = x + sigma e in pixel
space, the loss of their eq. 1 in both directions SUMMED (``loss_directions=2``), plain SGD with
weight decay. The toolkit adds only the data and the ``Recorder`` (``moments.nc``: X, X' through
the loop's own augmentation; ``measurements.nc``): the run folder that ``--from-run`` and the
reports read.
It is ``python -m empirical.train byol --backbone linear --projector none --predictor linear
--loss linear_byol --optimizer sgd --momentum 0 --lr-schedule constant --augment shift
--aug-shift 0 --no-aug-flip`` at the same sizes, written out.
"""

from __future__ import annotations

import argparse

import torch

from empirical.data import open_dataset
from empirical.recorder import Recorder
from symbolic import losses


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag, default in [("--data", "fashion-mnist"), ("--out", "runs/own_byol"), ("--k", 16),
                          ("--d", 8), ("--images", 2000), ("--batch", 128), ("--epochs", 20),
                          ("--lr", 0.02), ("--wd", 0.01), ("--tau", 0.99), ("--noise", 0.5),
                          ("--every", 30), ("--eval-size", 2000), ("--seed", 0)]:  # fmt: skip
        p.add_argument(flag, type=type(default), default=default)
    a = p.parse_args(argv)
    torch.manual_seed(a.seed)
    data = open_dataset(a.data, 200, None, a.seed, torch.device("cpu"))
    images = data.train.images[: a.images]

    def pixels(u):  # uint8 images -> normalised, flattened pixels
        return ((u.float() / 255 - data.mean[0]) / data.std[0]).flatten(1)

    x = pixels(images).double()
    mu = x.mean(0)
    var, vec = torch.linalg.eigh((x - mu).T @ (x - mu) / (len(x) - 1))
    components = (vec[:, -a.k :].flip(1).T / var[-a.k :].mean().sqrt()).float()

    def coords(u):  # the encoder's input: scaled principal components of the images
        return (pixels(u) - mu.float()) @ components.T

    noise = torch.Generator().manual_seed(a.seed + 1)

    def view(u):  # one augmented view, in the encoder's input coordinates
        x = pixels(u)
        return (x + a.noise * torch.randn(x.shape, generator=noise) - mu.float()) @ components.T

    w, wp = torch.nn.Linear(a.k, a.d, bias=False), torch.nn.Linear(a.d, a.d, bias=False)
    wa = w.weight.detach().clone()
    opt = torch.optim.SGD([w.weight, wp.weight], lr=a.lr, weight_decay=a.wd)
    loss_fn = losses.get("linear_byol")
    steps = len(images) // a.batch
    config = {"method": "own_linear_byol", "optimizer": "sgd", "momentum": 0.0, "probes": False,
              "projector": "none", "loss_params": {}, **vars(a)}  # fmt: skip
    describe = {"predictor_kind": "trained", "predictor_linear": 1, "target": "ema",
                "loss_name": "linear_byol", "matched_scenario": "linear_byol"}  # fmt: skip
    rec = Recorder(a.out, data, config, steps_per_epoch=steps, loss_directions=2, loss_scale=1.0,
                   eval_view=coords, describe=describe, quiet=True)  # fmt: skip
    rec.start()
    rec.write_moments(images.split(256), view, lambda v: v, n_views=16)  # X, X': moments.nc

    def record(step):
        weights = {"w": w.weight, "w_target": wa}
        rec.measure(step, lr=a.lr, wd=a.wd, ema=a.tau, encoder=w, predictor=wp.weight,
                    weights=weights)  # fmt: skip

    record(0)
    for epoch in range(a.epochs):
        order = torch.randperm(len(images))
        for i in range(steps):
            batch = images[order[i * a.batch : (i + 1) * a.batch]]
            v1, v2 = view(batch), view(batch)
            with torch.no_grad():
                t1, t2 = v1 @ wa.T, v2 @ wa.T
            z1, z2 = w(v1), w(v2)
            loss = loss_fn(wp.weight, z1, t2) + loss_fn(wp.weight, z2, t1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                wa.mul_(a.tau).add_(w.weight, alpha=1 - a.tau)
            step = epoch * steps + i
            rec.record_step(step, lr=a.lr, wd=a.wd, ema=a.tau, losses={"loss": loss.detach()})
            if (step + 1) % a.every == 0:
                record(step + 1)
    rec.write(epochs_completed=a.epochs, epochs=a.epochs)


if __name__ == "__main__":
    main()
