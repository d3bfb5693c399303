// The `floodgate` subcommands. Each takes its arguments (after the subcommand's name) and
// returns the process's exit status.
#pragma once

#include <string>
#include <vector>

namespace floodgate::app {

// Exit statuses shared by the subcommands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;      // Bad flags, files that cannot be opened or written.
inline constexpr int kExitBadInput = 2;   // A malformed trace line (replay --on-error=stop).
inline constexpr int kExitViolation = 3;  // stress: a check failed or a run hung.

int run_replay(const std::vector<std::string>& args);
int run_bench(const std::vector<std::string>& args);
int run_stress(const std::vector<std::string>& args);
// Without the service's libraries (gRPC, libyaml), says so and fails.
int run_serve(const std::vector<std::string>& args);

}  // namespace floodgate::app
