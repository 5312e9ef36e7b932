#!/bin/bash
# One call of a lent GPU machine: the CUDA checks, seconds per epoch on the GPU, and
# Fig. 7's paper preset up to D = L = MAX_SIZE, stopped cleanly after LIMIT seconds.
#
#   scripts/device_fig7.sh [MAX_SIZE [LIMIT]]          (defaults: 25, 300)
#
# Run from the repository root on that machine, whose python3 has PyTorch with CUDA,
# numba, click, pandas, matplotlib and seaborn; MNIST's four files in $RESDIFF_DATA_DIR
# (default ./.mnist, carried there: docs/training.md, "On a lent GPU"). Everything comes
# back as $OUT/device.log and $OUT/fig7.tgz (the Fig. 7 CSVs, sidecars, figure and any
# checkpoint of an unfinished run, to resume with `resdiff fig 7 --preset paper`).
# DEVICE=cpu PRESET=smoke try the script's steps on a CPU.
set -uo pipefail
max_size=${1:-25}
limit=${2:-300}
device=${DEVICE:-cuda}
preset=${PRESET:-paper}
out=${OUT:?set OUT to the folder that comes back}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 RESDIFF_NO_DOWNLOAD=1
export RESDIFF_DATA_DIR=${RESDIFF_DATA_DIR:-$PWD/.mnist}
scratch=$(mktemp -d)
smoke=$scratch/cuda-smoke
mkdir "$smoke"
{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    python3 -c "import torch, numba; print('torch', torch.__version__, 'cuda',
torch.cuda.is_available(), 'numba', numba.__version__)"

    echo "== 1. the CUDA path: 2 epochs of 2,000 images, each architecture and precision"
    for arch in fc conv; do
        for precision in fp32 tf32 bf16; do
            python3 -m resdiff mnist-train -q --device "$device" --arch "$arch" --size 8 \
                --optimizer adam --epochs 2 --n-train 2000 --n-test 1000 \
                --precision "$precision" -o "$smoke/$arch-$precision.csv" \
                && tail -n 1 "$smoke/$arch-$precision.csv" \
                || echo "FAILED: $arch $precision"
        done
    done

    echo "== 2. seconds per epoch of the paper preset"
    python3 -m bench.time_epochs --device "$device" --arch conv --sizes 10,25,50 \
        --precisions fp32,tf32,bf16 --estimate 100,150 || echo "FAILED: bench.time_epochs"

    echo "== 3. Fig. 7, $preset preset, D = L <= $max_size, at most $limit s"
    timeout -s TERM "$limit" python3 -m resdiff fig 7 --preset "$preset" \
        --max-size "$max_size" --jobs 2
    echo "resdiff fig 7: exit code $? (124: stopped by the time limit; resumable)"
    date -u
} 2>&1 | tee "$out/device.log"
tar czf "$out/fig7.tgz" -C "$scratch" cuda-smoke -C "$PWD" \
    $(ls -d figures/data/"$preset"/fig7-* figures/"$preset"/fig7* 2>/dev/null)
