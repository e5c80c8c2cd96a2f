# Sourced by the Tools scripts (demo, study, benchmarks): one preamble for all of them.
#   source "$(dirname "$0")/lib.sh"   (or ../lib.sh from Tools/bench, Tools/experiments)

# The repository root as working directory.
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Installs what is missing (Tools/bootstrap, plus any Debian packages named), builds the tool in
# release mode and sets $bin to it (compiler errors and progress on stderr). The build is the
# portable `swift build -c release` a user gets (the trainer's hot loops pick AVX-512, AVX2 or
# baseline at run time, docs/performance.md); PYRAMID_TARGET_CPU=haswell (or another CPU name)
# compiles for that CPU instead (swiftc -target-cpu), in .build-CPU, for comparison.
pyramid_setup() {
  ./Tools/bootstrap "$@"
  local cpu args=(-c release)
  cpu=${PYRAMID_TARGET_CPU:-}
  [ -z "$cpu" ] || args+=(--scratch-path ".build-$cpu" -Xswiftc -target-cpu -Xswiftc "$cpu")
  echo "== release build${cpu:+ for $cpu (swiftc -target-cpu $cpu)}" >&2
  swift build "${args[@]}" --product pyramid 2>&1 | grep -Ev '^(warning: prohibited flag|\[)' >&2 || true
  bin=$(swift build "${args[@]}" --show-bin-path)/pyramid
  [ -x "$bin" ] || { echo "$(basename "$0"): release build failed" >&2; exit 1; }
}

# The benchmarks' photo cache: $1/photos (300 JPEGs from Tools/bench/make-photos) built at
# 224,192,160,128,96, lossless (--codec zstd --filter sub), into $1/photo-cache, unless it is there
# already. Prints its path.
pyramid_photo_cache() {
  local work=$1
  if [ ! -f "$work/photo-cache/manifest.json" ]; then
    Tools/bench/make-photos "$work/photos" 300
    echo "== building $work/photo-cache" >&2
    "$bin" build "$work/photos" --out "$work/photo-cache" --levels 224,192,160,128,96 --codec zstd --filter sub --quiet --overwrite
  fi
  echo "$work/photo-cache"
}

# Installs CPU PyTorch when it is missing: a CPU wheel in pip's find-links (e.g. /opt/wheels) if
# there is one, else PyTorch's CPU index; dependencies come from PyPI either way.
pyramid_torch() {
  python3 -c "import torch" 2>/dev/null && return 0
  local wheel
  wheel=$(ls ${PIP_FIND_LINKS:-/opt/wheels}/torch-*+cpu-*.whl 2>/dev/null | sort | tail -1 || true)
  echo "== installing CPU PyTorch ${wheel:-from download.pytorch.org/whl/cpu}" >&2
  if [ -n "$wheel" ]; then python3 -m pip install --quiet "$wheel" >&2
  else python3 -m pip install --quiet torch --extra-index-url https://download.pytorch.org/whl/cpu >&2; fi
}

# The benchmarks' scratch directory, created: $PYRAMID_BENCH_DIR, default /tmp/pyramid-bench (a
# subdirectory of it when one is named). Prints its path.
pyramid_work_dir() {
  local dir="${PYRAMID_BENCH_DIR:-/tmp/pyramid-bench}${1:+/$1}"
  mkdir -p "$dir"
  echo "$dir"
}
