// floodgate: replay traffic through a rate limit, benchmark the limiters, stress-test them.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "build_info.h"
#include "commands.h"

namespace {

constexpr std::string_view kHelp = R"(usage: floodgate COMMAND [flags]

Commands:
  replay   decide every request of a trace (CSV or an access log) under a rate limit policy:
           decisions as CSV, a summary, an SVG plot
  bench    the standard benchmark scenarios, each beside an in-tree mutex baseline
  stress   hammer a limiter from many threads and check it never admits more than its quota
  serve    Envoy's rate limit service (gRPC) under envoyproxy/ratelimit's configuration

Run floodgate COMMAND --help for a command's flags; floodgate --version says which build this is.
)";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kHelp.data(), args.empty() ? stderr : stdout);
    return args.empty() ? floodgate::app::kExitUsage : floodgate::app::kExitOk;
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::printf("floodgate %s (commit %s)\n", floodgate::app::kVersion, floodgate::app::kCommit);
    return floodgate::app::kExitOk;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "replay") return floodgate::app::run_replay(args);
  if (command == "bench") return floodgate::app::run_bench(args);
  if (command == "stress") return floodgate::app::run_stress(args);
  if (command == "serve") return floodgate::app::run_serve(args);
  std::fprintf(stderr,
               "floodgate: unknown command \"%s\" (replay, bench, stress, serve; see --help)\n",
               command.c_str());
  return floodgate::app::kExitUsage;
}
