// The witness-order check: "check on the server side", in the order the object itself serialized
// the operations.
//
// When each operation's result reveals where the object linearized it (a ticket taken inside its
// lock or compare-and-swap, or state it reports back), the history needs no search: sort by
// ticket, replay a sequential model in that order and compare every result, then confirm that the
// order respects real time (an operation that returned before another was invoked must come
// first). O(n log n). A history that passes is linearizable; one that fails names the first
// operation that cannot be explained. Pure functions; thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "floodgate/testkit/runner.h"

namespace floodgate::testkit {

// Why a history has no valid witness order.
struct WitnessViolation {
  std::size_t position;  // Index, in witness order, of the first operation that does not fit.
  int worker;            // The worker that ran it.
  int operation;         // Its index among the worker's operations.
  std::string message;   // What the replay reported.
};

// Checks `history` in the order of `ticket(op)`: `replay(op)` must return nothing for every
// operation (else the message says how the model disagrees), and the order must respect real
// time. Operations that threw are skipped. `ticket` returns a key ordered by `<`; ties go in
// invoke order. `replay` is called in witness order and may keep the model's state.
template <typename R, typename Ticket, typename Replay>
std::optional<WitnessViolation> check_witness_order(const std::vector<Operation<R>>& history,
                                                    Ticket ticket, Replay replay) {
  std::vector<const Operation<R>*> order;
  order.reserve(history.size());
  for (const Operation<R>& op : history) {
    if (op.result.has_value()) order.push_back(&op);
  }
  // Ties (operations the ticket cannot tell apart, such as reads of one state) go in invoke order,
  // which respects real time among them.
  std::sort(order.begin(), order.end(), [&](const Operation<R>* a, const Operation<R>* b) {
    const auto ta = ticket(*a);
    const auto tb = ticket(*b);
    if (ta < tb) return true;
    if (tb < ta) return false;
    return a->invoked < b->invoked;
  });
  // Real time: no operation may come after one that was invoked after it returned. Keep the
  // latest invoke stamp seen so far in witness order.
  std::uint64_t latest_invoke = 0;
  const Operation<R>* latest = nullptr;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const Operation<R>& op = *order[i];
    if (latest != nullptr && op.returned < latest_invoke) {
      return WitnessViolation{i, op.worker, op.index,
                              "witness order puts w" + std::to_string(op.worker) + " operation " +
                                  std::to_string(op.index) + " \"" + op.description + "\" after w" +
                                  std::to_string(latest->worker) + " operation " +
                                  std::to_string(latest->index) + " \"" + latest->description +
                                  "\", which was invoked only after it had returned"};
    }
    if (op.invoked >= latest_invoke) {
      latest_invoke = op.invoked;
      latest = &op;
    }
    if (std::optional<std::string> mismatch = replay(op)) {
      return WitnessViolation{i, op.worker, op.index,
                              "w" + std::to_string(op.worker) + " operation " +
                                  std::to_string(op.index) + " \"" + op.description +
                                  "\": " + *mismatch};
    }
  }
  return std::nullopt;
}

}  // namespace floodgate::testkit
