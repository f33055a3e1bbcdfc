#!/usr/bin/env bash
# Run benchmarks/faiss_gpu_check.py on a lent GPU machine whose image has CUDA 13 only.
#
# PyPI's faiss-gpu 1.15.1 is a CUDA 12 build; its cuBLAS 12 wheel (581 MB) cannot travel to the
# machine (64 MiB per call), so cuBLAS 12 is stood in for by cublas12_shim.c, forwarding to the
# machine's cuBLAS 13. The CUDA 12 runtime (libcudart.so.12, 0.7 MB) travels in the payload.
# Payload: PAYLOAD=path/to/fg.tar.xz holding site/{faiss,faiss_gpu.libs,libcudart.so.12}, made
# here (56 MiB: it fits one call with the working tree; xz -9 gets 239 MB of libraries that far):
#   pip download --no-deps -d fg faiss-gpu==1.15.1 nvidia-cuda-runtime-cu12==12.9.79
#   pip install --no-index --no-deps --target site fg/faiss_gpu-*.whl
#   unzip -j fg/nvidia_cuda_runtime_cu12-*.whl '*/libcudart.so.12' -d site
#   tar -cf - site | xz -9 -T2 > .fgpay/fg.tar.xz     # .fgpay ignored by git, named in `carry`
# Device command: PAYLOAD=.fgpay/fg.tar.xz bash benchmarks/gpu/faiss_gpu_on_device.sh [--dim 3584 ...]
# faiss preloads its CUDA libraries from the nvidia-*-cu12 wheels' layout, so that layout is made.
# LanceDB is not on the machine and the check never touches it: an empty module stands in so that
# `avsearch.store` imports.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SITE=${SITE:-/tmp/fgsite}
OUT=${OUT:-/tmp/out}
rm -rf "$SITE" && mkdir -p "$SITE" "$OUT"
tar -xJf "${PAYLOAD:?}" -C "$SITE" --strip-components=1
first() { find /usr/local /opt /usr/lib /usr/include -name "$1" 2>/dev/null | head -1 || true; }
cuda_home=$(dirname "$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")")
CUDA_INCLUDE=${CUDA_INCLUDE:-$cuda_home/include}
header=${CUBLAS_INCLUDE:-$(dirname "$(first cublas_v2.h)")}
real=${CUBLAS13_PATH:-$(first 'libcublas.so.13*')}
echo "cuBLAS header: $header; cuBLAS 13: $real; CUDA runtime headers: $CUDA_INCLUDE"
lib="$SITE/nvidia"
mkdir -p "$lib/cuda_runtime/lib" "$lib/cublas/lib" "$lib/curand/lib"
# A regular package that still lets other `nvidia` portions (the machine's own wheels) import.
echo "__path__ = __import__('pkgutil').extend_path(__path__, __name__)" > "$lib/__init__.py"
touch "$lib/cuda_runtime/__init__.py" "$lib/cublas/__init__.py" "$lib/curand/__init__.py"
mv "$SITE/libcudart.so.12" "$lib/cuda_runtime/lib/"
gcc -O2 -fPIC -shared -Wall -Werror -I"$header" -I"$CUDA_INCLUDE" -I"$CUDA_INCLUDE/cccl" \
    -Wl,-soname,libcublas.so.12 -Wl,--version-script="$HERE/cublas12.map" \
    -o "$lib/cublas/lib/libcublas.so.12" "$HERE/cublas12_shim.c" -ldl
# faiss needs no symbol of cuBLASLt or cuRAND (readelf -V), only files of those names to load.
echo 'void avsearch_unused(void) {}' > /tmp/empty.c
gcc -shared -fPIC -Wl,-soname,libcublasLt.so.12 -o "$lib/cublas/lib/libcublasLt.so.12" /tmp/empty.c
gcc -shared -fPIC -Wl,-soname,libcurand.so.10 -o "$lib/curand/lib/libcurand.so.10" /tmp/empty.c
mkdir -p /tmp/nolancedb && : > /tmp/nolancedb/lancedb.py
export CUBLAS13_PATH="$real" PYTHONPATH="$SITE:$HERE/../..:${PYTHONPATH:-}:/tmp/nolancedb" PYTHONUNBUFFERED=1
python3 -c "import faiss; print('faiss', faiss.__version__, 'GPUs', faiss.get_num_gpus())"
python3 "$HERE/../faiss_gpu_check.py" --out "$OUT" "$@"
