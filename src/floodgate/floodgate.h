// The floodgate umbrella header: everything a user of the in-process limiters needs.
//
//   #include "floodgate/floodgate.h"
//
// Provides the core vocabulary (`Nanos`, `Instant`, the clocks, `Quota`, `Decision`, `Result`) and
// the limiters (`GcraLimiter`, `TokenBucketLimiter`, `FixedWindowLimiter`, the sliding windows,
// `LeakyBucketPacer`, `ConcurrencyLimiter`). Each header states its own thread-safety.
#pragma once

#include "floodgate/core/check.h"                    // IWYU pragma: export
#include "floodgate/core/clock.h"                    // IWYU pragma: export
#include "floodgate/core/concurrency.h"              // IWYU pragma: export
#include "floodgate/core/decision.h"                 // IWYU pragma: export
#include "floodgate/core/quota.h"                    // IWYU pragma: export
#include "floodgate/core/result.h"                   // IWYU pragma: export
#include "floodgate/core/time.h"                     // IWYU pragma: export
#include "floodgate/keyed/keyed_limiter.h"           // IWYU pragma: export
#include "floodgate/limiters/concurrency_limiter.h"  // IWYU pragma: export
#include "floodgate/limiters/fixed_window.h"         // IWYU pragma: export
#include "floodgate/limiters/gcra.h"                 // IWYU pragma: export
#include "floodgate/limiters/leaky_bucket_pacer.h"   // IWYU pragma: export
#include "floodgate/limiters/sliding_window.h"       // IWYU pragma: export
#include "floodgate/limiters/token_bucket.h"         // IWYU pragma: export
