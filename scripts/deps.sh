# Debian packages sit-eval needs, and an idempotent installer. Sourced by the scripts.

SIT_DEBIAN_PACKAGES=(
  cmake g++ ninja-build git
  libtorch-dev libeigen3-dev libopenblas-dev libblis-dev libhdf5-dev libcli11-dev
  libgtest-dev libbenchmark-dev zlib1g-dev libpng-dev libjpeg-dev nlohmann-json3-dev libtomlplusplus-dev
  gnuplot-nox texlive-latex-recommended   # HTML report plots; the pdflatex test of the LaTeX tables
  chromium                      # the HTML report's screenshot test (headless)
  clang libclang-rt-14-dev      # scripts/fuzz.sh: libFuzzer with ASan + UBSan
  python3-numpy python3-scipy python3-torch   # golden values, interop test, bench/compare_fid.py
  python3-pil                   # the image-decoding test's expected values (Pillow)
  openmpi-bin                   # the mpirun sharding test
)

# Installs whatever of SIT_DEBIAN_PACKAGES is missing; does nothing when all are present.
sit_install_deps() {
  local missing=()
  local p
  for p in "${SIT_DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "sit-eval: installing missing Debian packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "sit-eval: need root (or sudo) to apt-get install: ${missing[*]}" >&2
      return 1
    }
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Configures (once) and builds into build/.
sit_build() {
  local jobs="${SIT_JOBS:-$(nproc)}"
  if [ ! -f build/CMakeCache.txt ]; then
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
  fi
  cmake --build build -j "$jobs"
}
