#!/usr/bin/env bash
# Build llama-cpp-python once, for a portable x86-64 instruction set, into ~/.cache/knobs/wheels.
#
# Why not pip's own build: llama.cpp's default (GGML_NATIVE) compiles for the build machine's
# CPU, AMX tile instructions included where the CPU lists them. In the VMs this project runs on,
# the CPU lists AMX but the kernel does not enable its state, and the first completion dies of a
# general protection fault at `ldtilecfg` (seen here: llama-cpp-python 0.3.36, every request).
# A wheel built for AVX2/FMA/F16C runs on every x86-64 machine of the last decade, and it is
# kept under a name that includes these flags, so a rebuild happens only when they change
# (pip's wheel cache would hand back a native build made with other flags).
set -euo pipefail
venv_bin="$1"
spec="llama-cpp-python==0.3.36"
flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
key=$(printf '%s %s' "$spec" "$flags" | sha256sum | cut -c1-12)
dir="${XDG_CACHE_HOME:-$HOME/.cache}/knobs/wheels/llama-$key"
if ! ls "$dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "building $spec for AVX2 (once, about 6 minutes on 2 cores) into $dir"
  mkdir -p "$dir.tmp"
  CMAKE_ARGS="$flags" "$venv_bin/pip" wheel --quiet --no-deps --no-cache-dir "$spec" -w "$dir.tmp"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi
wheel=$(ls "$dir"/llama_cpp_python-*.whl | head -1)
# --force-reinstall: the same version built natively (pip's own build) must be replaced, not kept.
"$venv_bin/pip" install --quiet --force-reinstall --no-deps "$wheel"
"$venv_bin/pip" install --quiet "${wheel}[server]"
