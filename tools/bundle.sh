#!/usr/bin/env bash
# Bundles Bazel-built binaries with the shared libraries they need that a stock Ubuntu 24.04
# (or any newer-glibc distro) lacks: gRPC, protobuf, Abseil, OpenBLAS, image codecs, Bazel's
# own _solib_k8 libraries, ... The base C/C++ runtime (glibc, libstdc++, libgcc) and the NVIDIA
# driver (libcuda, libnvidia-*) always come from the host. CUDA toolkit runtime libraries
# (cudart, cuBLAS/cuBLASLt, NCCL, ...) are bundled only with --with-cuda.
#
# Layout:   OUT/bin/<name>      what you run (the binary itself, or a wrapper script)
#           OUT/lib/*.so*       bundled libraries (symlinks resolved)
#           OUT/libexec/<name>  the real binary when a wrapper is used
#           OUT/MANIFEST        what was bundled, and from where
# With patchelf the binaries get RUNPATH=$ORIGIN/../lib and the libraries RUNPATH=$ORIGIN;
# without it each binary gets a wrapper that sets LD_LIBRARY_PATH (works the same, but the
# libexec/ copy must not be run directly).
#
# Usage: tools/bundle.sh [--out DIR] [--with-cuda] [--no-patchelf] [--verify] BINARY...
set -euo pipefail

out="dist/bundle"
with_cuda=0
use_patchelf=1
verify=0
bins=()
while (($#)); do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    --with-cuda) with_cuda=1; shift ;;
    --no-patchelf) use_patchelf=0; shift ;;
    --verify) verify=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "bundle.sh: unknown option $1" >&2; exit 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done
((${#bins[@]})) || { echo "usage: $0 [--out DIR] [--with-cuda] [--no-patchelf] [--verify] BINARY..." >&2; exit 2; }
command -v ldd >/dev/null || { echo "bundle.sh: ldd not found" >&2; exit 1; }
if ((use_patchelf)) && ! command -v patchelf >/dev/null; then
  use_patchelf=0
fi

# Sonames the host always provides (glibc family, GCC runtime, kernel vDSO).
is_host_lib() {
  case "$1" in
    linux-vdso.so*|linux-gate.so*|ld-linux*.so*|libc.so*|libm.so*|libpthread.so*|libdl.so*|\
    librt.so*|libutil.so*|libresolv.so*|libanl.so*|libmvec.so*|libstdc++.so*|libgcc_s.so*|\
    libatomic.so*) return 0 ;;
  esac
  return 1
}
# The NVIDIA driver's user-space side: must match the host kernel module, never bundled.
is_driver_lib() {
  case "$1" in
    libcuda.so*|libcudadebugger.so*|libnvidia-*.so*|libnvcuvid.so*|libnvoptix.so*) return 0 ;;
  esac
  return 1
}
# CUDA toolkit runtime libraries: bundled only on request (a CUDA base image may provide them).
is_cuda_runtime_lib() {
  case "$1" in
    libcudart.so*|libcublas.so*|libcublasLt.so*|libnccl.so*|libcurand.so*|libcusparse.so*|\
    libcusolver.so*|libcufft.so*|libnvrtc*.so*|libnvJitLink.so*|libnvToolsExt.so*|\
    libcupti.so*) return 0 ;;
  esac
  return 1
}

mkdir -p "$out/bin" "$out/lib" "$out/libexec"
manifest="$out/MANIFEST"
: > "$manifest"
declare -A bundled=()

for bin in "${bins[@]}"; do
  [[ -f "$bin" && -x "$bin" ]] || { echo "bundle.sh: $bin is not an executable file" >&2; exit 1; }
  name="$(basename "$bin")"
  # ldd prints the transitive closure, resolved through the binary's RUNPATH (Bazel's solibs).
  ldd_out="$(ldd "$bin" 2>&1)" || { echo "bundle.sh: ldd $bin failed: $ldd_out" >&2; exit 1; }
  if grep -q 'not found' <<<"$ldd_out"; then
    echo "bundle.sh: $bin has unresolved libraries:" >&2
    grep 'not found' <<<"$ldd_out" >&2
    exit 1
  fi
  while read -r soname arrow path _; do
    [[ "$arrow" == "=>" && "$path" == /* ]] || continue
    if is_host_lib "$soname" || is_driver_lib "$soname"; then continue; fi
    if is_cuda_runtime_lib "$soname" && ((!with_cuda)); then
      echo "skip $soname (CUDA runtime; pass --with-cuda to bundle) <- $name" >> "$manifest"
      continue
    fi
    if [[ -z "${bundled[$soname]:-}" ]]; then
      cp -L "$path" "$out/lib/$soname"
      chmod u+w "$out/lib/$soname"
      bundled[$soname]="$path"
      echo "lib $soname <- $path" >> "$manifest"
      if ((use_patchelf)); then patchelf --set-rpath '$ORIGIN' "$out/lib/$soname"; fi
    fi
  done <<<"$ldd_out"

  if ((use_patchelf)); then
    cp -L "$bin" "$out/bin/$name"
    chmod u+w "$out/bin/$name"
    patchelf --set-rpath '$ORIGIN/../lib' "$out/bin/$name"
    echo "bin $name <- $bin (RUNPATH \$ORIGIN/../lib)" >> "$manifest"
  else
    cp -L "$bin" "$out/libexec/$name"
    chmod u+w "$out/libexec/$name"
    cat > "$out/bin/$name" <<WRAP
#!/bin/sh
# Runs the bundled $name with the bundled libraries ahead of the host's.
here="\$(cd "\$(dirname "\$0")" && pwd)"
LD_LIBRARY_PATH="\$here/../lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$here/../libexec/$name" "\$@"
WRAP
    chmod +x "$out/bin/$name"
    echo "bin $name <- $bin (wrapper: LD_LIBRARY_PATH=\$here/../lib)" >> "$manifest"
  fi
done

# Every non-host library must now resolve inside the bundle.
if ((verify)); then
  status=0
  for bin in "${bins[@]}"; do
    name="$(basename "$bin")"
    if ((use_patchelf)); then
      resolved="$(env -u LD_LIBRARY_PATH ldd "$out/bin/$name")"
    else
      resolved="$(LD_LIBRARY_PATH="$out/lib" ldd "$out/libexec/$name")"
    fi
    lib_dir="$(cd "$out/lib" && pwd)"
    while read -r soname arrow path _; do
      [[ "$arrow" == "=>" ]] || continue
      if is_host_lib "$soname" || is_driver_lib "$soname"; then continue; fi
      if is_cuda_runtime_lib "$soname" && ((!with_cuda)); then continue; fi
      real="$(cd "$(dirname "$path")" 2>/dev/null && pwd)" || real=""
      if [[ "$path" == "not" || "$real" != "$lib_dir" ]]; then
        echo "verify: $name: $soname resolves to $path, not the bundle" >&2
        status=1
      fi
    done <<<"$resolved"
  done
  ((status == 0)) || exit 1
  echo "verify: every bundled dependency resolves inside $out/lib" >&2
fi
echo "bundled ${#bins[@]} binaries and ${#bundled[@]} libraries into $out" >&2
