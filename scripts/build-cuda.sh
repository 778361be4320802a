#!/usr/bin/env bash
# Build `ember` with the `cuda` feature on a machine with no GPU and no CUDA installation.
#
#   bash scripts/build-cuda.sh            # → $CARGO_TARGET_DIR/release/ember (stripped copy: ember-cuda)
#
# What the build needs, and where it comes from here:
#   * nvcc 13.0 (candle-kernels compiles its .cu files to PTX, and its quantized MoE kernels to
#     an sm_90 static library, through cudaforge), with cicc/ptxas/nvvm, the CUDA headers and
#     CCCL: the PyPI wheels nvidia-cuda-nvcc, nvidia-nvvm, nvidia-cuda-crt, nvidia-cuda-runtime,
#     nvidia-cuda-cccl (all CUDA 13.0).
#   * the libraries cudarc links with `dynamic-linking` (cublas, cublasLt, curand, nvrtc; cudart
#     for candle-kernels): the wheels nvidia-cublas, nvidia-curand, nvidia-cuda-nvrtc.
#   * libcuda.so (the driver API) to link against. No CUDA 13 wheel carries the toolkit's
#     stub, so the real driver library of Debian's `libcuda1` (non-free, driver 535) is used for
#     linking only: the binary records `libcuda.so.1` and plain symbol names, and at run time
#     loads the GPU machine's own driver (580 there). The link fails loudly if ember ever needs a
#     driver function newer than 535 — then take lib64/stubs/libcuda.so from a CUDA 13 toolkit
#     instead (CUDA_STUB=/path/to/libcuda.so).
# At run time the GPU machine needs its driver plus libcublas.so.13, libcublasLt.so.13,
# libcurand.so.10, libnvrtc.so.13 and libcudart.so.13 on LD_LIBRARY_PATH (/usr/local/cuda/lib64).
#
# Environment: CUDA_PREFIX (default /opt/cuda-13) holds the assembled toolkit; CUDA_COMPUTE_CAP
# (default 90: Hopper, H100/H200) picks the GPU the kernels are built for. candle's build
# (cudaforge) turns 90 and above into the arch-specific target (sm_90a), whose code runs on that
# generation only: build once per GPU generation (80 for an A100, 89 for an L4/L40S).
# CUDAFORGE_THREADS (default 2) compiles that many of candle's .cu files at once; its 15
# quantized-MoE files take a few minutes each on a small machine.
set -euo pipefail

prefix=${CUDA_PREFIX:-/opt/cuda-13}
cap=${CUDA_COMPUTE_CAP:-90}
root=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -x "$prefix/bin/nvcc" ]; then
    wheels=$(mktemp -d)
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$wheels" \
        nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
        nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88 \
        nvidia-cublas==13.0.2.14 nvidia-curand==10.4.5.25
    unpacked=$(mktemp -d)
    for w in "$wheels"/*.whl; do unzip -q -o "$w" 'nvidia/*' -d "$unpacked"; done
    mkdir -p "$(dirname "$prefix")"
    rm -rf "$prefix"
    mv "$unpacked/nvidia/cu13" "$prefix"
    ln -s lib "$prefix/lib64"
    # Wheels ship only versioned sonames; the linker looks for libX.so.
    (cd "$prefix/lib" && for f in *.so.*; do b=${f%%.so.*}; [ -e "$b.so" ] || ln -s "$f" "$b.so"; done)
    rm -rf "$wheels" "$unpacked"
fi

if [ ! -e "$prefix/lib/stubs/libcuda.so" ]; then
    mkdir -p "$prefix/lib/stubs"
    if [ -n "${CUDA_STUB:-}" ]; then
        cp "$CUDA_STUB" "$prefix/lib/stubs/libcuda.so"
    else
        apt=$(mktemp -d)
        mkdir -p "$apt/lists/partial" "$apt/archives/partial"
        echo "deb http://deb.debian.org/debian bookworm main contrib non-free non-free-firmware" >"$apt/sources.list"
        o=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
           -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache::Archives=$apt/archives")
        apt-get "${o[@]}" update -qq
        (cd "$apt" && apt-get "${o[@]}" download libcuda1 && dpkg -x libcuda1_*.deb x)
        cp "$apt"/x/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.*.* "$prefix/lib/stubs/libcuda.so"
        rm -rf "$apt"
    fi
fi

export CUDA_ROOT=$prefix CUDA_PATH=$prefix CUDA_HOME=$prefix
export PATH=$prefix/bin:$PATH
export CUDA_COMPUTE_CAP=$cap
export CUDAFORGE_THREADS=${CUDAFORGE_THREADS:-2}
export LIBRARY_PATH=$prefix/lib/stubs:$prefix/lib${LIBRARY_PATH:+:$LIBRARY_PATH}
nvcc --version | tail -n 2

cd "$root"
cargo build --release -p ember-cli --features cuda
target=${CARGO_TARGET_DIR:-$root/target}
strip -o "$target/release/ember-cuda" "$target/release/ember"
ls -l "$target/release/ember-cuda"
echo "needs at run time:"
readelf -d "$target/release/ember-cuda" | grep NEEDED
