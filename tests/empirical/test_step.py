"""The training step on the CPU path as a GPU would run it: no host synchronisation, LARS in
foreach kernels, MoCo without the online pass it does not use, measurements in fp32."""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch

import empirical.measure
import empirical.recorder
from empirical.backbones import ConvNet
from empirical.config import build_method, config_class
from empirical.distributed import DistInfo
from empirical.methods import METHODS
from empirical.optim import LARS, param_groups
from empirical.trainer import Run
from symbolic import losses
from tests.empirical.conftest import train

SMALL = dict(
    train_subset=256, batch_size=64, val_size=200, probe_train=200, probe_test=200,
    eval_size=200, width=8, proj_hidden=64, proj_dim=32, workers="0", epochs=2,
)  # fmt: skip
OWN = {"byol": {"pred_hidden": 64}, "simsiam": {"pred_hidden": 64}, "moco_v2": {"queue_size": 256}}
#: the Python-level calls that wait for the device (on CUDA) when given a tensor
SYNCING = ("item", "tolist", "numpy", "cpu", "nonzero", "__float__", "__int__", "__bool__")


@contextlib.contextmanager
def counting_syncs():
    """Count calls of SYNCING tensor methods and torch.nonzero while the block runs."""
    counts: dict[str, int] = {}
    saved = {name: getattr(torch.Tensor, name) for name in SYNCING}
    saved_nonzero = torch.nonzero

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] = counts.get(name, 0) + 1
            return fn(*args, **kwargs)

        return wrapper

    for name, fn in saved.items():
        setattr(torch.Tensor, name, counted(name, fn))
    torch.nonzero = counted("torch.nonzero", saved_nonzero)
    try:
        yield counts
    finally:
        for name, fn in saved.items():
            setattr(torch.Tensor, name, fn)
        torch.nonzero = saved_nonzero


def make_run(method: str, fashion_dir, tmp_path, **options) -> Run:
    cfg = config_class(METHODS[method])(
        method=method,
        data=f"fashion-mnist:{fashion_dir}",
        out=str(tmp_path / method),
        **{**SMALL, **OWN.get(method, {}), **options},
    )
    return Run(cfg, DistInfo(), torch.device("cpu"), quiet=True)


@pytest.mark.parametrize(
    "method, options",
    [
        ("byol", {"augment": "byol"}),
        ("simclr", {"augment": "byol", "optimizer": "lars"}),
        ("moco_v2", {"augment": "byol"}),
        ("vicreg", {"augment": "shift"}),
        ("barlow_twins", {}),
        ("simsiam", {}),
    ],
)
def test_the_step_waits_for_the_device_nowhere(fashion_dir, tmp_path, method, options):
    """Three steps after the first (which records the initial loss) call none of the
    synchronising tensor methods: views, loss, backward, optimiser, EMA/queue, the record."""
    run = make_run(method, fashion_dir, tmp_path, **options)
    run.epoch = 1
    batches = iter(run.epoch_batches())
    run.train_step(next(batches)[0], 0.01, 0.99 if run.method.target == "ema" else None)
    run.step = 1
    with counting_syncs() as counts:
        for _ in range(3):
            tau = run.tau_at(run.step)
            loss = run.train_step(next(batches)[0], run.lr_at(run.step), tau)
            run.step += 1
        assert counts == {}
        float(loss)  # what the loop does every --log-every steps: counted
        assert counts == {"__float__": 1}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_step_waits_for_the_device_nowhere_on_cuda(fashion_dir, tmp_path):
    cfg = config_class(METHODS["byol"])(
        method="byol", data=f"fashion-mnist:{fashion_dir}", out=str(tmp_path / "r"),
        augment="byol", **SMALL, **OWN["byol"],
    )  # fmt: skip
    run = Run(cfg, DistInfo(), torch.device("cuda"), quiet=True)
    run.epoch = 1
    batches = iter(run.epoch_batches())
    run.train_step(next(batches)[0], 0.01, 0.99)
    run.step = 1
    images = next(batches)[0]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        run.train_step(images, 0.01, 0.99)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def loop_lars_step(params, lr, momentum, wd, eta, buffers):
    """The per-parameter LARS update (the loop this package used before its foreach kernels)."""
    with torch.no_grad():
        for i, p in enumerate(params):
            g = p.grad.add(p, alpha=wd)
            w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
            g = g * torch.where((w_norm > 0) & (g_norm > 0), eta * w_norm / g_norm, 1.0)
            buffers[i] = g.clone() if buffers[i] is None else buffers[i].mul_(momentum).add_(g)
            p.add_(buffers[i], alpha=-lr)


def test_foreach_lars_equals_the_loop_over_parameters():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    ref = copy.deepcopy(net)
    lr, mom, wd, eta = 0.3, 0.9, 0.01, 0.02
    opt = LARS(param_groups(net, wd), lr=lr, momentum=mom, eta=eta)
    weights = [ref[0].weight, ref[2].weight]
    others = [ref[0].bias, ref[2].bias]
    buffers_w, buffers_o = [None, None], [None, None]
    x = torch.randn(16, 6)
    for _ in range(4):
        for model in (net, ref):
            model.zero_grad()
            model(x).pow(2).sum().backward()
        opt.step()
        loop_lars_step(weights, lr, mom, wd, eta, buffers_w)
        with torch.no_grad():  # biases: plain momentum SGD, no decay, no trust ratio
            for i, p in enumerate(others):
                g = p.grad
                buffers_o[i] = g.clone() if buffers_o[i] is None else buffers_o[i].mul_(mom).add_(g)
                p.add_(buffers_o[i], alpha=-lr)
    for a, b in zip(net.parameters(), ref.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)


def test_moco_encodes_only_the_query_view_and_keeps_its_loss_and_gradients():
    """Loss and gradients against the full two-view online pass of the same network."""
    torch.manual_seed(0)
    model = build_method("moco_v2", ConvNet(1, 4), proj_hidden=16, proj_dim=8, queue_size=32)
    model = model.double()
    v1, v2 = torch.randn(2, 8, 1, 12, 12, dtype=torch.float64)
    calls = []
    model.online.register_forward_hook(lambda m, args, out: calls.append(len(args)))
    loss, _, _ = model.training_loss(v1, v2)
    loss.backward()
    assert calls == [1]  # one view through the online network
    grads = {k: p.grad.clone() for k, p in model.online.named_parameters()}
    model.zero_grad()
    out = model.online(v1, v2)  # what the online pass computed before
    key = model.target_embed(v2)
    ref = losses.get("infonce")(out["z1"], key, model.queue, **model.loss_params)
    ref.backward()
    assert torch.equal(loss.detach(), ref.detach())
    for k, p in model.online.named_parameters():
        assert torch.allclose(grads[k], p.grad, rtol=1e-12, atol=1e-14), k


def test_measurements_run_in_fp32_outside_the_training_autocast(fashion_dir, tmp_path, monkeypatch):
    """--precision bf16 (CPU autocast): the step runs under autocast, every measured forward
    (eval features, aug_ratio) without it."""
    seen = {"train": [], "measure": []}
    real_training_loss = METHODS["byol"].training_loss
    real_extract, real_ratio = empirical.measure.extract, empirical.recorder.augmentation_ratio

    def training_loss(self, v1, v2):
        with self.autocast():
            seen["train"].append(torch.is_autocast_enabled("cpu"))
        return real_training_loss(self, v1, v2)

    def spying(fn):
        def wrapper(encoder, *args, **kwargs):
            def watched(x):
                seen["measure"].append(torch.is_autocast_enabled("cpu"))
                return encoder(x)

            return fn(watched, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(METHODS["byol"], "training_loss", training_loss)
    monkeypatch.setattr(empirical.measure, "extract", spying(real_extract))
    monkeypatch.setattr(empirical.recorder, "augmentation_ratio", spying(real_ratio))
    assert train("byol", tmp_path / "r", fashion_dir, "--precision", "bf16", "--no-probes") == 0
    assert seen["train"] and all(seen["train"])
    assert seen["measure"] and not any(seen["measure"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_linear_backbone_fits_its_pca_from_device_batches():
    """The PCA of batches on the GPU equals the one of the same batches on the CPU."""
    from empirical.backbones import LinearEncoder

    x = torch.randn(4, 64, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    on_cpu, on_gpu = LinearEncoder(36, 5, 3), LinearEncoder(36, 5, 3).cuda()
    on_cpu.fit(iter(x))
    on_gpu.fit(iter(x.cuda()))
    assert torch.allclose(on_gpu.pca_components.cpu(), on_cpu.pca_components, atol=1e-5)
