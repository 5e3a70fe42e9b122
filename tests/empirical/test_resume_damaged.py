"""``--resume`` on damaged files: the last good checkpoint, the rest recomputed from it.

The guide's rule: a long run resumes from its last checkpoint with the same result. A latest
checkpoint cut short (a crash of the disk, a careless copy) leaves the one before it
(``checkpoint.previous.pt``): the run resumes from that, says so, and ends bit-identical to an
uninterrupted run on the CPU; a cut-short ``measurements.nc`` is rewritten from the checkpoint.
With no good checkpoint left, one line naming each, exit status 2.
"""

from __future__ import annotations

import torch

from tests.empirical.conftest import run_inprocess, tiny, train
from tests.empirical.test_train import compare_runs


def cut_short(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_a_damaged_latest_checkpoint_resumes_from_the_previous_one(fashion_dir, tmp_path, capsys):
    straight, damaged = tmp_path / "straight", tmp_path / "damaged"
    assert train("simsiam", straight, fashion_dir, epochs=2) == 0
    assert train("simsiam", damaged, fashion_dir, epochs=2) == 0
    previous = damaged / "checkpoint.previous.pt"
    assert torch.load(previous, weights_only=True)["epoch"] == 1
    cut_short(damaged / "checkpoint.pt")
    cut_short(damaged / "measurements.nc")
    capsys.readouterr()
    assert train("simsiam", damaged, fashion_dir, "--resume", epochs=2) == 0
    log = (damaged / "log.txt").read_text()
    assert f"resumed {previous} at epoch 1" in log and "latest checkpoint is damaged" in log
    compare_runs(straight, damaged)  # model, optimiser, streams, record: bit-identical

    cut_short(damaged / "checkpoint.pt")
    cut_short(damaged / "checkpoint.previous.pt")
    argv = ["simsiam", "--data", f"fashion-mnist:{fashion_dir}", "--epochs", "2"]
    code, err = run_inprocess(capsys, *argv, "--out", str(damaged), *tiny("simsiam"), "--resume")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{damaged / 'checkpoint.pt'}: " in err and f"{previous}: " in err, err
