"""The parts of ``benchmarks/gpu_check.sh``: each measures one thing and appends a JSON line to
``OUT/results.jsonl``; ``table`` prints them as the Markdown table README's GPU section holds.

    python benchmarks/gpu_check.py env OUT
    python benchmarks/gpu_check.py images OUT --count N          # a generated ImageNet-shaped tree
    python benchmarks/gpu_check.py decode OUT --count N          # JPEG decode rate per core (+ GPU)
    python benchmarks/gpu_check.py step OUT --method byol --backbone resnet50 [--compile]
    python benchmarks/gpu_check.py train OUT --label L --folder F -- EMPIRICAL.TRAIN OPTIONS
    python benchmarks/gpu_check.py reproduce OUT --steps 100 [--dry]
    python benchmarks/gpu_check.py timed OUT --label L -- COMMAND...  # wall time of a command
    python benchmarks/gpu_check.py table OUT

Everything runs on the CPU too (``DRY=1`` in the script: tiny sizes, nothing compared with a
target). Peak FLOP/s for the MFU: dense bf16 of the card, from :data:`PEAK_BF16` by name.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: dense bf16 tensor-core peak, FLOP/s (vendor data sheets, SXM parts)
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


def record(out: Path, part: str, name: str, value, unit: str = "", target: str = "") -> None:
    """One measured value, appended to OUT/results.jsonl and printed."""
    line = {"part": part, "name": name, "value": value, "unit": unit, "target": target}
    with open(out / "results.jsonl", "a") as fh:
        fh.write(json.dumps(line) + "\n")
    print(f"{part:10s} {name:44s} {value} {unit} {target}", flush=True)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


# ----------------------------------------------------------------------------- parts
def part_env(out: Path, args) -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    record(out, "env", "torch", torch.__version__)
    record(out, "env", "CUDA devices", torch.cuda.device_count())
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        record(out, "env", "device", props.name)
        record(out, "env", "device memory", round(props.total_memory / 2**30, 1), "GiB")
        record(out, "env", "bf16 supported", torch.cuda.is_bf16_supported())
    try:
        import triton  # noqa: F401  (torch.compile's GPU back end)

        record(out, "env", "triton", "present")
    except ImportError:
        record(out, "env", "triton", "absent")
    record(out, "env", "CPU cores usable", cores)
    shm = os.statvfs("/dev/shm") if os.path.exists("/dev/shm") else None
    if shm is not None:
        record(out, "env", "/dev/shm", round(shm.f_blocks * shm.f_frsize / 2**30, 1), "GiB")


def part_images(out: Path, args) -> None:
    """An ImageNet-shaped tree (train/ and val/ class folders) of photo-like JPEGs at ImageNet
    sizes (500 x 375, 375 x 500, 500 x 333; q 90), made from smooth random fields."""
    from PIL import Image

    root = Path(args.folder)
    rng = np.random.default_rng(0)
    sizes = [(500, 375), (375, 500), (500, 333)]
    classes = max(2, min(100, args.count // 20))
    made = 0
    for split, n in (("train", args.count), ("val", max(classes * 2, args.count // 10))):
        for i in range(n):
            folder = root / split / f"n{i % classes:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{split}_{i:07d}.JPEG"
            if path.exists():
                continue
            w, h = sizes[i % len(sizes)]
            small = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
            img = Image.fromarray(small).resize((w, h), Image.BICUBIC)
            img.save(path, quality=90)
            made += 1
    record(out, "images", "generated JPEGs", made, "files")


def part_decode(out: Path, args) -> None:
    """Decode + fit rate per core (the loader workers' work) and, with CUDA, nvJPEG's rate."""
    from empirical.images import decode_bytes, fit, read_bytes

    files = sorted(Path(args.folder).rglob("*.JPEG"))[: args.count]
    data = [read_bytes(p) for p in files]
    torch.set_num_threads(1)
    start = time.perf_counter()
    for d in data:
        fit(decode_bytes(d), 256)
    rate = len(data) / (time.perf_counter() - start)
    record(out, "decode", "decode + resize per core (CPU)", round(rate), "img/s")
    record(out, "decode", "cores for 3000 img/s", round(3000 / rate, 1), "cores")
    if torch.cuda.is_available():
        from empirical.images import jpeg_decoded

        dev = device()
        for _ in range(2):  # the second pass is timed (nvJPEG's start-up excluded)
            sync(dev)
            start = time.perf_counter()
            for s in range(0, len(data), 256):
                images = jpeg_decoded(data[s : s + 256], dev)
                for image in images:
                    fit(image, 256)
            sync(dev)
        rate = len(data) / (time.perf_counter() - start)
        record(out, "decode", "nvJPEG decode + resize (GPU)", round(rate), "img/s")


def step_run(args, dev: torch.device):
    """A Run of the toolkit's trainer on the generated folder (its loader is not used)."""
    from empirical.config import config_class
    from empirical.distributed import DistInfo
    from empirical.methods import METHODS
    from empirical.trainer import Run

    cls = METHODS[args.method]
    options = dict(
        method=args.method, data=f"imagenet:{args.folder}", out=str(Path(args.out) / "step"),
        backbone=args.backbone, batch_size=args.batch, image_size=args.image_size,
        load_size=args.load_size, workers="0", compile=args.compile, augment="byol",
        val_size=10, eval_size=16,
    )  # fmt: skip
    if args.method == "byol":
        options["pred_hidden"] = args.hidden
    options.update(proj_hidden=args.hidden, proj_dim=256)
    cfg = config_class(cls)(**options)
    return Run(cfg, DistInfo(), dev, quiet=True)


def part_step(out: Path, args) -> None:
    """The trainer's step without the loader: images/s, MFU, peak memory, syncs per step."""
    from empirical.images import canvas_side

    dev = device()
    run = step_run(args, dev)
    side = canvas_side(args.load_size)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch, 3, side, side), dtype=torch.uint8, generator=gen)
    images = images.to(dev)
    sizes = torch.tensor([[args.load_size, side]] * args.batch, device=dev)
    images.image_sizes = sizes
    label = f"{args.method} {args.backbone} b{args.batch}" + (" compile" if args.compile else "")
    run.epoch = 1
    for _ in range(args.warmup):
        run.train_step(images, 0.01, 0.99)
        run.step += 1
    sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    start = time.perf_counter()
    for _ in range(args.steps):
        run.train_step(images, 0.01, 0.99)
        run.step += 1
    sync(dev)
    seconds = (time.perf_counter() - start) / args.steps
    record(out, "step", f"{label}: images/s", round(args.batch / seconds, 1), "img/s")
    flops = step_flops(run, images)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    if peak:
        record(out, "step", f"{label}: MFU (bf16 peak)", round(flops / seconds / peak, 3))
    record(out, "step", f"{label}: TFLOP per step", round(flops / 1e12, 3), "TFLOP")
    if dev.type == "cuda":
        peak_mem = torch.cuda.max_memory_allocated(dev) / 2**30
        record(out, "step", f"{label}: peak memory", round(peak_mem, 2), "GiB")
    record(out, "step", f"{label}: synchronising calls per step", count_syncs(run, images))


def step_flops(run, images) -> float:
    """FLOPs of one training step (forward and backward), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        run.train_step(images, 0.01, 0.99)
    run.step += 1
    return float(counter.get_total_flops())


def count_syncs(run, images) -> int:
    """Calls of the tensor methods that wait for the device, in one step (Python level)."""
    names = ("item", "tolist", "numpy", "cpu", "nonzero", "__float__", "__int__", "__bool__")
    saved = {n: getattr(torch.Tensor, n) for n in names}
    count = [0]

    def counted(fn):
        def wrapper(*a, **k):
            count[0] += 1
            return fn(*a, **k)

        return wrapper

    for name, fn in saved.items():
        setattr(torch.Tensor, name, counted(fn))
    try:
        run.train_step(images, 0.01, 0.99)
    finally:
        for name, fn in saved.items():
            setattr(torch.Tensor, name, fn)
    run.step += 1
    return count[0]


def part_train(out: Path, args) -> None:
    """``empirical.train`` with its loader: wall time, images/s of the last epoch, peak memory."""
    import xarray as xr

    cmd = [sys.executable, "-m", "empirical.train", *args.rest]
    start = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if res.returncode != 0:
        record(out, "train", f"{args.label}: FAILED", res.stderr.strip().splitlines()[-1][:200])
        return
    with xr.open_dataset(Path(args.run) / "measurements.nc") as ds:
        rate = float(ds["throughput"][-1])
        steps = int(ds["step_at_measurement"][-1])
    record(out, "train", f"{args.label}: images/s (last epoch)", round(rate, 1), "img/s")
    record(out, "train", f"{args.label}: {steps} steps, wall", round(wall, 1), "s")


def part_reproduce(out: Path, args) -> None:
    """The reproduce GPU plan's cost model against one of its BYOL runs, ``--steps`` long."""
    import xarray as xr

    from reports.reproduce.cli import chosen_claims
    from reports.reproduce.configs import PRODUCTS
    from reports.reproduce.plan import claim_set
    from reports.reproduce.scale import SCALES

    scale = SCALES["quick" if args.dry else "gpu"]
    claimed = claim_set(chosen_claims(None), scale, 1, out / "reproduce_work", args.data)
    command = next(c for c in claimed.commands if c.args[0] == "byol")
    model = scale.step_seconds(
        scale.features, scale.proj_hidden, scale.proj_dim, PRODUCTS.get("byol", 0), scale.batch
    )
    folder = out / "reproduce_run"
    argv = command.argv()
    argv = [a for a in argv[: argv.index("--out")] if a != "--quiet"]
    steps = args.steps
    argv += ["--out", str(folder), "--epochs", "1", "--train-subset", str(steps * scale.batch)]
    argv += ["--measure-every", str(10 * steps), "--no-probes", "--quiet"]
    res = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        record(out, "reproduce", "BYOL run: FAILED", res.stderr.strip().splitlines()[-1][:200])
        return
    with xr.open_dataset(folder / "measurements.nc") as ds:
        measured = scale.batch / float(ds["throughput"][-1])
    record(out, "reproduce", f"cost model step_s ({scale.name} scale)", round(model, 4), "s")
    record(out, "reproduce", f"measured s per step ({steps} steps)", round(measured, 4), "s")
    ratio = measured / model
    record(
        out, "reproduce", "measured / model", round(ratio, 2), "", "" if args.dry else "0.77-1.3"
    )


def part_timed(out: Path, args) -> None:
    start = time.perf_counter()
    res = subprocess.run(args.rest, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["?"])[-1][:200]
        record(out, args.part, f"{args.label}: FAILED", tail)
        return
    record(out, args.part, args.label, round(wall, 1), "s", args.target)
    for line in res.stdout.splitlines() + res.stderr.splitlines():
        if args.grep and args.grep in line:
            record(out, args.part, f"{args.label}: {args.grep}", line.strip()[:120])


def part_table(out: Path, args) -> None:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    print("| part | measurement | value | target |")
    print("|---|---|---|---|")
    for r in rows:
        value = f"{r['value']} {r['unit']}".strip()
        print(f"| {r['part']} | {r['name']} | {value} | {r['target']} |")


def main() -> int:
    p = argparse.ArgumentParser(prog="benchmarks/gpu_check.py")
    p.add_argument("part")
    p.add_argument("out", type=Path)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--folder", default="", help="the generated tree (default: OUT/imagenet)")
    p.add_argument("--method", default="byol")
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--load-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--dry", action="store_true")
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--label", default="")
    p.add_argument("--run", default="")
    p.add_argument("--part-name", dest="part_name", default="")
    p.add_argument("--target", default="")
    p.add_argument("--grep", default="")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = p.parse_args(argv[:split])
    args.rest = argv[split + 1 :]
    args.out.mkdir(parents=True, exist_ok=True)
    args.folder = args.folder or str(args.out / "imagenet")
    if args.part == "timed":
        args.part = args.part_name or "timed"
        part_timed(args.out, args)
        return 0
    parts = {
        "env": part_env, "images": part_images, "decode": part_decode, "step": part_step,
        "train": part_train, "reproduce": part_reproduce, "table": part_table,
    }  # fmt: skip
    parts[args.part](args.out, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
