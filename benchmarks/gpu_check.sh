#!/usr/bin/env bash
# The GPU arm on a GPU machine, in about 10 minutes, from the repository root:
#
#   bash benchmarks/gpu_check.sh                  # OUT=gpu_check_out, PY=.venv/bin/python
#   DRY=1 bash benchmarks/gpu_check.sh            # every part at tiny size on the CPU (CI)
#
# Parts: 0 environment; 1 JPEG decode rate per core (and nvJPEG's); 2 the trainer's step without
# its loader, BYOL and SimCLR on ResNet-18 and ResNet-50 at batch 256 in bf16 + channels_last,
# with and without --compile (images/s, MFU, peak memory, synchronising calls per step);
# 3 200 steps of empirical.train on a generated ImageNet-shaped folder with its loader (target:
# >= 90% of the step's rate without it); 4 the reproduce GPU plan (--plan) and one of its BYOL
# runs for 100 steps against its cost model; 5 dynamics.sweep eigenmodes --backend torch at 1e6
# and 1e7 points (target: 1e7 under 60 s); 6 with 2+ GPUs, a torchrun smoke and its --resume.
# Every value goes to OUT/results.jsonl; the Markdown table to OUT/table.md (README's GPU
# section). Environment: OUT, PY, DRY, SKIP_COMPILE=1, SKIP_SWEEP=1, IMAGES (generated JPEGs).
set -u
OUT=${OUT:-gpu_check_out}
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
DRY=${DRY:-0}
mkdir -p "$OUT"
rm -f "$OUT/results.jsonl"
failed=0
part() {  # part NAME COMMAND...: run one part, note a failure, go on
    local name=$1
    shift
    echo "== $name"
    if ! "$@"; then
        echo "   part $name failed" >&2
        failed=1
    fi
}
check() { "$PY" benchmarks/gpu_check.py "$@"; }
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ "$DRY" = 1 ]; then  # tiny sizes, the CPU, no targets
    export CUDA_VISIBLE_DEVICES=""
    IMAGES=${IMAGES:-40}; BATCH=4; HIDDEN=32; SIZE=16; LOAD=20; STEPS=2; WARM=1
    BACKBONES="convnet"; TRAIN_STEPS=2; REPRO_STEPS=2; SWEEP="1e2"; DEV=cpu
    NGPU=0; DDP_PROCS=2
else
    IMAGES=${IMAGES:-6000}; BATCH=256; HIDDEN=4096; SIZE=224; LOAD=256; STEPS=20; WARM=5
    BACKBONES="resnet18 resnet50"; TRAIN_STEPS=200; REPRO_STEPS=100; SWEEP="1e6 1e7"; DEV=cuda
    NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())")
    DDP_PROCS=$NGPU
fi
TREE="$OUT/imagenet"

part env check env "$OUT"
part images check images "$OUT" --folder "$TREE" --count "$IMAGES"
part decode check decode "$OUT" --folder "$TREE" --count "$IMAGES"

for backbone in $BACKBONES; do
    for method in byol simclr; do
        for compile in "" "--compile"; do
            if [ -n "$compile" ] && { [ "${SKIP_COMPILE:-0}" = 1 ] || [ "$DRY" = 1 ]; }; then
                continue
            fi
            part "step $method $backbone $compile" check step "$OUT" --folder "$TREE" \
                --method "$method" --backbone "$backbone" --batch "$BATCH" --hidden "$HIDDEN" \
                --image-size "$SIZE" --load-size "$LOAD" --steps "$STEPS" --warmup "$WARM" $compile
        done
    done
done

# 3: the loader on: steps over the generated tree (epochs as needed), measured at the end
TRAIN_SUBSET=$((IMAGES * 9 / 10))
EPOCHS=$(( (TRAIN_STEPS * BATCH + TRAIN_SUBSET - 1) / TRAIN_SUBSET ))
[ "$EPOCHS" -lt 1 ] && EPOCHS=1
BACKBONE=${BACKBONES%% *}
part "train with loader" check train "$OUT" --label "byol $BACKBONE b$BATCH loader" \
    --run "$OUT/train_loader" -- byol --data "imagenet:$TREE" --backbone "$BACKBONE" \
    --batch-size "$BATCH" --epochs "$EPOCHS" --image-size "$SIZE" --load-size "$LOAD" \
    --proj-hidden "$HIDDEN" --pred-hidden "$HIDDEN" --val-size 10 --eval-size 16 --no-probes \
    --measure-every 1000000 --device "$DEV" --workers auto --quiet --out "$OUT/train_loader"

# 4: the reproduce GPU plan (no CUDA needed to print it) and one BYOL run against its cost model
part "reproduce plan" check timed "$OUT" --part-name reproduce --label "--scale gpu --plan" \
    --grep "estimated" -- "$PY" -m reports.reproduce --scale gpu --plan --out "$OUT/reproduce"
if [ "$DRY" = 1 ]; then
    part "reproduce run" check reproduce "$OUT" --steps "$REPRO_STEPS" --dry
else
    part "reproduce run" check reproduce "$OUT" --steps "$REPRO_STEPS"
fi

# 5: the torch back end of the sweeps
if [ "${SKIP_SWEEP:-0}" != 1 ]; then
    for points in $SWEEP; do
        n=$("$PY" -c "print(int(round(float('$points') ** 0.5)))")
        target=""; [ "$points" = 1e7 ] && target="< 60 s"
        part "sweep $points" check timed "$OUT" --part-name sweep --target "$target" \
            --label "eigenmodes torch, $points points" -- "$PY" -m dynamics.sweep eigenmodes \
            --grid "eta=0:0.3:$n" --grid "beta=0.1:1:$n" --backend torch --quiet \
            --out "$OUT/sweep_$points.nc"
    done
fi

# 6: torchrun on 2+ devices (DRY: 2 CPU processes, gloo), then --resume
if [ "$DDP_PROCS" -ge 2 ]; then
    for extra in "--stop-after 1" "--resume"; do
        part "torchrun $extra" check timed "$OUT" --part-name ddp \
            --label "torchrun x$DDP_PROCS vicreg $extra" -- "$PY" -m torch.distributed.run \
            --nproc-per-node "$DDP_PROCS" -m empirical.train vicreg --data fashion-mnist \
            --epochs 2 --train-subset $((BATCH * DDP_PROCS * 4)) --batch-size $((BATCH * DDP_PROCS)) \
            --val-size 100 --eval-size 64 --no-probes --width 8 --proj-hidden 32 --proj-dim 16 \
            --device "$DEV" --quiet --out "$OUT/ddp" $extra
    done
else
    echo "== torchrun: skipped (fewer than 2 GPUs)"
fi

check table "$OUT" | tee "$OUT/table.md"
exit $failed
