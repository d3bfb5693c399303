#include "floodgate/redis/internal/scripts.h"

#include <string>

#include "floodgate/redis/internal/sha1.h"

namespace floodgate::internal {
namespace {

// Shared by the scripts: 64-bit integers as two Lua numbers (doubles), hi x 10^9 + lo with lo in
// [0, 10^9), so that sums and differences of nanosecond instants are exact (a double alone is
// exact only to 2^53, about 104 days of nanoseconds), and the instant of the request.
constexpr std::string_view kPrelude = R"lua(
local E = 1000000000
local function parse(s)
  local neg = string.byte(s, 1) == 45
  if neg then s = string.sub(s, 2) end
  local n = #s
  local hi = 0
  if n > 9 then hi = tonumber(string.sub(s, 1, n - 9)) end
  local lo = tonumber(string.sub(s, -9))
  if neg then
    if lo > 0 then return -hi - 1, E - lo end
    return -hi, 0
  end
  return hi, lo
end
local function format(hi, lo)
  local neg = hi < 0
  if neg then
    if lo > 0 then hi, lo = -hi - 1, E - lo else hi = -hi end
  end
  local s
  if hi == 0 then s = string.format('%d', lo) else s = string.format('%d%09d', hi, lo) end
  if neg then return '-' .. s end
  return s
end
local function add(ah, al, bh, bl)
  local h, l = ah + bh, al + bl
  if l >= E then return h + 1, l - E end
  return h, l
end
local function sub(ah, al, bh, bl)
  local h, l = ah - bh, al - bl
  if l < 0 then return h - 1, l + E end
  return h, l
end
local function less(ah, al, bh, bl)
  return ah < bh or (ah == bh and al < bl)
end
local ts = ARGV[1]
if ts == '' then
  local now = redis.call('TIME')
  ts = now[1] .. string.format('%06d', tonumber(now[2])) .. '000'
end
local state = redis.call('GET', KEYS[1])
)lua";

// GCRA: the state is the theoretical arrival time in nanoseconds (floodgate/limiters/internal/
// gcra_rule.h), as decimal text. Admitted iff max(state, t) - t + charge <= window; the key then
// holds t + that sum and lives until then. Two scripts share the pieces below: one key
// (`gcra_script`, every call's) and several keys all or none (`gcra_all_script`).
//
// Every call runs it, so it is written for the fewest function calls (each costs Redis more than
// the arithmetic): no prelude; the instant (seconds or '' for the server's TIME, then
// nanoseconds), each window and each charge come split, so that each sum of two 64-bit
// nanosecond counts is exact in Lua's doubles, and are read by Lua's own coercion; only the state
// is split here, and the new state is the only number written as text. A reply gives the instant
// as "<seconds> <fraction>", the fraction the nanoseconds as given, or TIME's microseconds.

// The instant `th` s + `tl` ns, from ARGV[1] and ARGV[2], and `at`, its text for the reply.
constexpr std::string_view kGcraInstant = R"lua(
local E = 1000000000
local th, tl, at
if ARGV[1] == '' then
  local now = redis.call('TIME')
  th, tl = now[1] + 0, now[2] * 1000
  at = now[1] .. ' ' .. now[2]
else
  th, tl = ARGV[1] + 0, ARGV[2] + 0
  at = ARGV[1] .. ' ' .. ARGV[2]
end
)lua";

// From `key`'s `state` (a GET's reply): `uh` s + `ul` ns, how far the state is ahead of the
// instant (0 for none or a past one), or an error reply for a value that is not a state.
constexpr std::string_view kGcraUsed = R"lua(
local uh, ul = 0, 0
if state then
  local n = #state
  local sh, sl
  if n > 9 and n < 20 then
    sh, sl = tonumber(string.sub(state, 1, n - 9)), tonumber(string.sub(state, n - 8))
  end
  if not (sh and sl and sh >= 0) then
    -- Shorter, longer or negative (an instant before 1970: -(a x E + b) is
    -- (-a - 1) x E + (E - b)), or not a state.
    local neg = string.byte(state, 1) == 45
    local digits = neg and string.sub(state, 2) or state
    local m = #digits
    sh, sl = 0, nil
    if m > 9 then
      sh, sl = tonumber(string.sub(digits, 1, m - 9)), tonumber(string.sub(digits, m - 8))
    else
      sl = tonumber(digits)
    end
    if m > 19 or not sh or not sl or sh < 0 then sl = nil end
    if sl and neg then
      if sl > 0 then sh, sl = -sh - 1, E - sl else sh = -sh end
    end
  end
  if not sl or sl < 0 or sl >= E or sh % 1 ~= 0 or sl % 1 ~= 0 then
    return redis.error_reply('floodgate: key ' .. key .. ' does not hold a GCRA state')
  end
  if sh > th or (sh == th and sl > tl) then
    uh, ul = sh - th, sl - tl
    if ul < 0 then uh, ul = uh - 1, ul + E end
  end
end
)lua";

// Stores the state the instant plus `nh` s + `nl` ns in `key`, to expire then plus `slack` ms.
constexpr std::string_view kGcraStore = R"lua(
  local xh, xl = th + nh, tl + nl
  if xl >= E then xh, xl = xh + 1, xl - E end
  local text
  if xh > 0 then
    text = string.format('%d%09d', xh, xl)
  elseif xh == 0 then
    text = string.format('%d', xl)
  elseif xl > 0 then
    text = string.format('-%d%09d', -xh - 1, E - xl)
  else
    text = string.format('-%d000000000', -xh)
  end
  local r = nl % 1000000
  local ms = nh * 1000 + (nl - r) / 1000000 + slack
  if r > 0 then ms = ms + 1 end
  redis.call('SET', key, text, 'PX', ms)
)lua";

// One key: ARGV[1], ARGV[2] the instant; ARGV[3], ARGV[4] the window; ARGV[5], ARGV[6] the
// charge; ARGV[7] '1' writes; ARGV[8] the TTL slack in milliseconds. Replies "<1 admitted|0>
// <seconds> <fraction> <state before|->".
std::string gcra_text() {
  std::string text(kGcraInstant);
  text += "local key = KEYS[1]\nlocal state = redis.call('GET', key)\n";
  text += kGcraUsed;
  text += R"lua(local nh, nl = uh + ARGV[5], ul + ARGV[6]
if nl >= E then nh, nl = nh + 1, nl - E end
local wh = ARGV[3] + 0
local admitted = nh < wh or (nh == wh and nl <= ARGV[4] + 0)
if admitted and ARGV[7] == '1' and (nh > 0 or nl > 0) then
  local slack = ARGV[8]
)lua";
  text += kGcraStore;
  text += R"lua(end
if admitted then return '1 ' .. at .. ' ' .. (state or '-') end
return '0 ' .. at .. ' ' .. (state or '-')
)lua";
  return text;
}

// Several keys, all or none (`RedisLimiter::acquire_all`): each key decided as above at one
// instant; the new states written only if every key admits. ARGV[1], ARGV[2] the instant, ARGV[3]
// the TTL slack in milliseconds, then four per key: KEYS[i]'s window in ARGV[4i], ARGV[4i+1] and
// its charge in ARGV[4i+2], ARGV[4i+3]. A charge above the window never admits (the client sends
// one for a cost outside [1, burst]); a charge of 0 writes nothing. Replies "<0 admitted | i, the
// first key that refused> <seconds> <fraction> <state before of KEYS[1]|-> ... <of KEYS[n]|->".
std::string gcra_all_text() {
  std::string text(kGcraInstant);
  text += R"lua(local states, after = {}, {}
local refused = 0
for i = 1, #KEYS do
  local b = 4 * i
  local key = KEYS[i]
  local state = redis.call('GET', key)
)lua";
  text += kGcraUsed;
  text += R"lua(  local nh, nl = uh + ARGV[b + 2], ul + ARGV[b + 3]
  if nl >= E then nh, nl = nh + 1, nl - E end
  local wh = ARGV[b] + 0
  if refused == 0 and not (nh < wh or (nh == wh and nl <= ARGV[b + 1] + 0)) then refused = i end
  states[i] = state or '-'
  after[i] = {nh, nl}
end
if refused == 0 then
  local slack = ARGV[3]
  for i = 1, #KEYS do
    local b = 4 * i
    local key = KEYS[i]
    local nh, nl = after[i][1], after[i][2]
    if (ARGV[b + 2] ~= '0' or ARGV[b + 3] ~= '0') and (nh > 0 or nl > 0) then
)lua";
  text += kGcraStore;
  text += R"lua(    end
  end
end
return refused .. ' ' .. at .. ' ' .. table.concat(states, ' ')
)lua";
  return text;
}

// Token bucket: the state is the instant the bucket was empty, a double of nanoseconds
// (floodgate/limiters/internal/token_bucket_rule.h); no key is a bucket full at every instant.
// The same double operations in the same order as `TokenBucket::admit`.
constexpr std::string_view kTokenBucket = R"lua(
local t = tonumber(ts)
local empty_at = -math.huge
if state then
  empty_at = tonumber(state)
  if not empty_at or #state > 32 or not string.match(state, '^%-?[%d%.]+e?[%+%-]?%d*$') then
    return redis.error_reply('floodgate: key ' .. KEYS[1] .. ' does not hold a token bucket state')
  end
end
local rate, per, burst, need = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local available = 0
local elapsed = t - empty_at
if elapsed > 0 then
  local refilled = elapsed * rate
  if refilled >= burst then available = burst else available = refilled end
end
local admitted = available >= need
if admitted and ARGV[6] == '1' and need > 0 then
  local nxt
  if available == burst then
    nxt = math.max(empty_at, t - (burst - need) * per)
  else
    nxt = empty_at + need * per
  end
  local ms = math.ceil((nxt + burst * per - t) / 1000000) + 1
  redis.call('SET', KEYS[1], string.format('%.17g', nxt), 'PX',
             string.format('%d', ms + tonumber(ARGV[7])))
end
if admitted then return '1 ' .. ts .. ' ' .. (state or '-') end
return '0 ' .. ts .. ' ' .. (state or '-')
)lua";

// Fixed window, envoyproxy/ratelimit's counting: the key holds "<window start> <count>"; every
// hit in the current window is counted, admitted or not, and a request is denied when the count
// after it passes the limit. The period is `k` whole seconds or `p` nanoseconds that divide a
// second (the client checks), so the window start is found without dividing a 64-bit number.
constexpr std::string_view kFixedWindow = R"lua(
local th, tl = parse(ts)
local k, p = tonumber(ARGV[2]), tonumber(ARGV[3])
local limit, hits = tonumber(ARGV[4]), tonumber(ARGV[5])
local bh, bl, eh, el
if k > 0 then
  local r = math.fmod(th, k)
  if r < 0 then r = r + k end
  bh, bl = th - r, 0
  eh, el = bh + k, 0
else
  bh, bl = th, tl - math.fmod(tl, p)
  eh, el = add(bh, bl, 0, p)
end
local count = 0
if state then
  local start, stored = string.match(state, '^(%-?%d+) (%d+)$')
  if not start or #start > 20 or #stored > 16 then
    return redis.error_reply('floodgate: key ' .. KEYS[1] .. ' does not hold a fixed window state')
  end
  local sh, sl = parse(start)
  if less(bh, bl, sh, sl) then return '2 ' .. ts .. ' ' .. state end
  if sh == bh and sl == bl then count = tonumber(stored) end
end
count = count + hits
if ARGV[6] == '1' and hits > 0 then
  local lh, ll = sub(eh, el, th, tl)
  local ms = lh * 1000 + math.ceil(ll / 1000000)
  redis.call('SET', KEYS[1], format(bh, bl) .. ' ' .. string.format('%d', count), 'PX',
             string.format('%d', ms + tonumber(ARGV[7])))
end
local verdict = '1 '
if count > limit then verdict = '0 ' end
return verdict .. ts .. ' ' .. format(bh, bl) .. ' ' .. string.format('%d', count)
)lua";

// A script's text and its name, built once on first use.
struct Built {
  explicit Built(std::string_view body) : Built(kPrelude, body) {}
  Built(std::string_view prelude, std::string_view body)
      : text(std::string(prelude) + std::string(body)), script{text, sha1_hex(text)} {}
  const std::string text;
  const Script script;
};

}  // namespace

const Script& gcra_script() {
  static const Built built(std::string_view{}, gcra_text());
  return built.script;
}

const Script& gcra_all_script() {
  static const Built built(std::string_view{}, gcra_all_text());
  return built.script;
}

const Script& token_bucket_script() {
  static const Built built(kTokenBucket);
  return built.script;
}

const Script& fixed_window_script() {
  static const Built built(kFixedWindow);
  return built.script;
}

}  // namespace floodgate::internal
