#!/usr/bin/env bash
# Installs the Debian 12 packages floodgate needs to build, test and benchmark, and only those
# that are missing. Idempotent: a second run installs nothing and says so. Run as root.
set -euo pipefail

packages=(
  make            # the front door
  cmake           # >= 3.25 (bookworm ships 3.25.1)
  ninja-build
  g++
  libgtest-dev    # GoogleTest
  libgmock-dev
  libbenchmark-dev  # Google Benchmark
  clang-format    # the format check is part of the test suite
  libboost-dev    # Boost.Asio, for examples/asio_scheduler.cc (header-only)
  clang           # the fuzz targets (make fuzz, CI): clang++ with -fsanitize=fuzzer
  libclang-rt-14-dev  # libFuzzer and clang's sanitizer runtimes
  python3         # the CLI test parses the plot as XML
  python3-yaml    # the packaging test reads the compose, Envoy and Kubernetes files
  systemd         # systemd-analyze verify checks the unit (packaging/)
  pkg-config      # finds hiredis and cpp-httplib
  libhiredis-dev  # the naive Redis client that floodgate bench --redis compares against
  redis-server    # the Redis backend's tests start their own servers and clusters
  redis-tools     # redis-cli --cluster create / reshard, redis-benchmark
  redis-sentinel  # the Sentinel tests: a real failover under redis+sentinel://
  libssl-dev      # TLS to Redis (rediss://); openssl makes the TLS tests' certificates
  openssl
  libgrpc++-dev   # floodgate serve: Envoy's rate limit service (gRPC)
  libprotobuf-dev
  protobuf-compiler
  protobuf-compiler-grpc
  libyaml-dev     # floodgate serve: envoyproxy/ratelimit's YAML configuration (libyaml events)
  libcpp-httplib-dev  # the HTTP client of the serve tests, and examples/http_service.cc
  chromium        # the replay report's test loads the page in a real headless browser
  doxygen         # make docs: the API reference from the headers' contracts
)

# promtool, Prometheus's checker (the metrics and alert-rule tests), comes from Debian's
# prometheus package. That package also installs and starts a Prometheus server, which no build
# machine should run: promtool alone is taken out of it (a static program) and installed here.
promtool_path=/usr/local/bin/promtool

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done
need_promtool=0
command -v promtool >/dev/null 2>&1 || need_promtool=1

if ((${#missing[@]} == 0 && need_promtool == 0)); then
  echo "install-deps: all ${#packages[@]} packages and promtool present; nothing to install"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  ((${#missing[@]} == 0)) || echo "install-deps: missing packages: ${missing[*]}" >&2
  ((need_promtool == 0)) || echo "install-deps: missing: promtool (from the prometheus package)" >&2
  echo "install-deps: run as root (or: sudo $0) to install them" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if ((${#missing[@]} > 0)); then
  echo "install-deps: installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ((need_promtool == 1)); then
  echo "install-deps: installing promtool from the prometheus package, without the server"
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  chmod 755 "$scratch"
  chown _apt "$scratch" 2>/dev/null || true  # apt downloads as the _apt user.
  (cd "$scratch" && apt-get download -qq prometheus)
  dpkg-deb --fsys-tarfile "$scratch"/prometheus_*.deb | tar -x -C "$scratch" ./usr/bin/promtool
  install -m 755 "$scratch/usr/bin/promtool" "$promtool_path"
  "$promtool_path" --version | head -n 1
fi
echo "install-deps: done"
