"""examples/solo_learn_callback.py: the callback passes each step's schedule and loss to the
recorder and measures every ``every`` steps; with Lightning installed, inside a real Trainer."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest
import torch

from tests.empirical.conftest import REPO


def callback_module():
    spec = importlib.util.spec_from_file_location(
        "solo_learn_callback", REPO / "examples" / "solo_learn_callback.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Calls:
    """A recorder that keeps its calls."""

    def __init__(self):
        self.calls = []

    def start(self):
        self.calls.append(("start",))

    def record_step(self, step, **kw):
        self.calls.append(
            ("step", step, kw["lr"], kw["wd"], kw["ema"], float(kw["losses"]["loss"]))
        )

    def measure(self, step, **kw):
        self.calls.append(("measure", step, kw["lr"], kw["predictor"] is not None))

    def write(self, epochs_completed, epochs):
        self.calls.append(("write", epochs_completed, epochs))


def test_hooks_record_every_step_and_measure_every_few():
    """A loop calling the hooks as Lightning does: global_step counts the steps taken."""
    rec = Calls()
    weight = torch.nn.Parameter(torch.ones(2, 2))
    opt = torch.optim.SGD([weight], lr=0.1, weight_decay=0.01)
    module = SimpleNamespace(momentum_updater=SimpleNamespace(cur_tau=0.99), w=weight)
    trainer = SimpleNamespace(optimizers=[opt], global_step=0, max_epochs=1, current_epoch=0)
    cb = callback_module().RecorderCallback(
        rec, every=2, encoder=lambda m: m.w, predictor=lambda m: m.w
    )
    cb.on_fit_start(trainer, module)
    for k in range(5):
        opt.param_groups[0]["lr"] = 0.1 * (k + 1)  # a schedule, read after the step
        trainer.global_step = k + 1
        cb.on_train_batch_end(trainer, module, {"loss": torch.tensor(float(k))}, None, k)
    trainer.current_epoch = 1
    cb.on_fit_end(trainer, module)
    steps = [c for c in rec.calls if c[0] == "step"]
    assert [c[1] for c in steps] == [0, 1, 2, 3, 4]
    assert [c[2] for c in steps] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert all(c[3] == 0.01 and c[4] == 0.99 for c in steps)
    assert [c[5] for c in steps] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [c[1] for c in rec.calls if c[0] == "measure"] == [0, 2, 4]
    assert rec.calls[0] == ("start",) and rec.calls[-1] == ("write", 1, 1)


def test_inside_a_lightning_trainer(tmp_path):
    lightning = pytest.importorskip("lightning")

    class Tiny(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(4, 2, bias=False)

        def training_step(self, batch, batch_idx):
            return (self.w(batch[0]) ** 2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05, weight_decay=0.001)

    rec = Calls()
    cb = callback_module().RecorderCallback(rec, every=3, encoder=lambda m: m.w)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(24, 4)), 4)
    trainer = lightning.Trainer(
        max_epochs=1, callbacks=[cb], logger=False, enable_checkpointing=False,
        default_root_dir=tmp_path, enable_progress_bar=False,
    )  # fmt: skip
    trainer.fit(Tiny(), data)
    assert [c[1] for c in rec.calls if c[0] == "step"] == list(range(6))
    assert [c[1] for c in rec.calls if c[0] == "measure"] == [0, 3, 6]
    assert all(c[2] == pytest.approx(0.05) for c in rec.calls if c[0] == "step")
