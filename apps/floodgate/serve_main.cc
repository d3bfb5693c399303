// floodgate-serve: the `floodgate serve` command in a program of its own. It links gRPC, whose
// start-up opens descriptors; the floodgate command stays free of it (a closed standard input
// must stay closed for `floodgate replay -`) and runs this program for `serve`.
#include <absl/synchronization/mutex.h>

#include <string>
#include <vector>

#include "commands.h"

int main(int argc, char** argv) {
  // Debian builds Abseil with its Mutex deadlock detector on: every lock inside gRPC records
  // lock-order edges in a global graph (about 7% of the server's CPU in a profile). It is a
  // debugging aid for Abseil's users, not for a service's requests; this program turns it off
  // before any thread starts.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return floodgate::app::run_serve(std::vector<std::string>(argv + 1, argv + argc));
}
