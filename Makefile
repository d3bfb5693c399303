# floodgate's front door. `make run` and `make test` work on a fresh Debian 12 machine as root:
# each installs what is missing (scripts/install-deps.sh), builds, and then runs.
#
#   make run     build and run the main job: replay a day of a web server's access log through
#                a per-client rate limit (and three others to compare), print the summary, draw
#                the plot, write the HTML report
#   make test    build and run the whole suite (ends with CTest's summary)
#   make bench   build and run the benchmarks (ratios against the in-tree baseline), then the
#                hot path as users build it, at -O2 and -O3 (ratios against a minimal GCRA)
#   make tsan    build with ThreadSanitizer and run every test but the consumer and lint ones
#   make asan    build with AddressSanitizer + UBSan and run the whole suite
#   make docs    the API reference from the public headers' contracts (doxygen), in
#                build/docs/html, and the public members still without one
#   make fuzz    build the libFuzzer targets (clang, ASan + UBSan) and fuzz each for FUZZ_SECONDS
#                (default 60); `make fuzz-ci` runs each for a fixed FUZZ_RUNS inputs (CI)

PRESET ?= ci
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
FUZZ_RUNS    ?= 20000

.PHONY: all deps build run test bench tsan asan fuzz fuzz-ci format clean docs

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake --preset $(PRESET)
	cmake --build --preset $(PRESET) -j $(JOBS)

REPLAY_OUT = build/replay

run: build
	@mkdir -p $(REPLAY_OUT)
	gzip -dc data/access.log.gz | ./build/$(PRESET)/apps/floodgate/floodgate replay - \
	  --quota "5/s burst 20" --quotas data/quotas.txt \
	  --sweep "1/s burst 5,5/s burst 20,10/s burst 50" \
	  --out $(REPLAY_OUT)/decisions.csv --plot $(REPLAY_OUT)/plot.svg \
	  --report $(REPLAY_OUT)/report.html
	@echo "Decisions: $(CURDIR)/$(REPLAY_OUT)/decisions.csv"
	@echo "Plot (open it in a browser): $(CURDIR)/$(REPLAY_OUT)/plot.svg"
	@echo "Report (open it in a browser): $(CURDIR)/$(REPLAY_OUT)/report.html"

test: build
	ctest --preset $(PRESET) -j $(JOBS)

bench: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS) --target floodgate_bench
	./build/release/bench/floodgate_bench
	bash bench/hot_path/run.sh

tsan: deps
	cmake --preset tsan
	cmake --build --preset tsan -j $(JOBS)
	# Without address-space randomization: some kernels randomize more bits than GCC 12's
	# ThreadSanitizer can map around ("unexpected memory mapping").
	setarch $$(uname -m) -R ctest --preset tsan -LE 'consumer|lint' -j $(JOBS)

asan: deps
	cmake --preset asan
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS)

fuzz: deps
	bash scripts/fuzz.sh seconds $(FUZZ_SECONDS)

fuzz-ci: deps
	bash scripts/fuzz.sh runs $(FUZZ_RUNS)

format:
	clang-format -i $$(git ls-files '*.h' '*.cc')

clean:
	rm -rf build

docs: deps
	@rm -rf build/docs && mkdir -p build/docs
	doxygen docs/api/Doxyfile
	@echo "API reference: $(CURDIR)/build/docs/html/index.html"
	@if [ -s build/docs/warnings.log ]; then cat build/docs/warnings.log; \
	  echo "doxygen warned: $$(grep -c 'is not documented' build/docs/warnings.log) public members without a contract"; exit 1; fi
