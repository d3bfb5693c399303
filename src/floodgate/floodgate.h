// The floodgate umbrella header: everything a user of the in-process limiters names.
//
//   #include "floodgate/floodgate.h"
//
// The vocabulary: `Quota` and `OnQuotaChange`; `Decision`, `Verdict` and `Grant`; `Result` and
// `Error`; `Nanos`, `Instant` and `kNever`; the `Clock` and `SleepingClock` concepts and
// `SteadyClock`, `CoarseClock` and `ManualClock`; `Algorithm` (with `kAlgorithms`,
// `parse_algorithm`, `to_string` and `has_burst`). The limiters: `GcraLimiter` (the default) and
// `TokenBucketLimiter`, both `BucketLimiter`s over a rule (`GcraRule`, `TokenBucketRule`;
// `gcra_model` and `kGcraInitialState` for testkit's checks), with
// `Reservation`, `WaitResult` and `WaitStatus`; `ScalableGcraLimiter` with
// `ScalableGcraOptions`; `FixedWindowLimiter`, `SlidingWindowLogLimiter` and
// `SlidingWindowCounterLimiter`; all of them `RateLimiter`s, with `Threads` to choose between a
// shared limiter and a single thread's. `LeakyBucketPacer` (a `Pacer`), `ConcurrencyLimiter`,
// and `acquire_all_at` with `AllOrNone`. `KeyedLimiter` over any rule (also `FixedWindowRule`,
// `SlidingLogRule`, `SlidingCounterRule` and `EnvoyFixedWindowRule`; `with_rule` picks an
// `Algorithm`'s), with `KeyedLimiterOptions`, `KeyedLimiterStats` and `OverflowPolicy`. Each
// header states its own thread-safety. Names in `floodgate::internal` are not part of the API.
#pragma once

#include "floodgate/core/algorithm.h"                // IWYU pragma: export
#include "floodgate/core/clock.h"                    // IWYU pragma: export
#include "floodgate/core/decision.h"                 // IWYU pragma: export
#include "floodgate/core/quota.h"                    // IWYU pragma: export
#include "floodgate/core/result.h"                   // IWYU pragma: export
#include "floodgate/core/time.h"                     // IWYU pragma: export
#include "floodgate/keyed/acquire_all.h"             // IWYU pragma: export
#include "floodgate/keyed/keyed_limiter.h"           // IWYU pragma: export
#include "floodgate/limiters/bucket_limiter.h"       // IWYU pragma: export
#include "floodgate/limiters/concurrency_limiter.h"  // IWYU pragma: export
#include "floodgate/limiters/fixed_window.h"         // IWYU pragma: export
#include "floodgate/limiters/gcra.h"                 // IWYU pragma: export
#include "floodgate/limiters/leaky_bucket_pacer.h"   // IWYU pragma: export
#include "floodgate/limiters/rate_limiter.h"         // IWYU pragma: export
#include "floodgate/limiters/reservation.h"          // IWYU pragma: export
#include "floodgate/limiters/rules.h"                // IWYU pragma: export
#include "floodgate/limiters/scalable_gcra.h"        // IWYU pragma: export
#include "floodgate/limiters/sliding_window.h"       // IWYU pragma: export
#include "floodgate/limiters/token_bucket.h"         // IWYU pragma: export
