"""The shared ledger's one Lua script: a batch of admissions and settlements, run atomically.

It is `control.ledger.Ledger` rewritten for Redis, step for step, so that the two agree on
every figure (the unit tests run the same cases through both): budgets with exact resets
(calendar months included), a sliding 60 s window of one-second buckets in a ring of 61,
reservations of the worst case that settle to the real cost or release.  Redis runs a script
alone, so every admission of the batch checks and reserves with no other call between: the
atomicity `Ledger` gets from trio's single thread, across every instance.

One account is one hash, `<prefix>{ledger}:<level>:<entity>`: `sp` spend, `rv` reserved,
`fl` calls in flight, `ra` budget reset, `w` the window's newest second, `q`/`tk` the
window's totals, `le` its last event, `q<slot>`/`t<slot>` the buckets.  Every key of the
ledger carries the same hash tag, so a call's key, team, user and end-user accounts, which
one admission must change together, are in one Cluster slot.  A reservation leaves a key
`<prefix>{ledger}:res:<instance>:<n>` (expiring long after any call could end): settling
deletes it first, so a settlement sent twice (a batch retried after a lost answer) counts
once, and one for an account Redis no longer holds (restarted empty, expired) changes nothing.

KEYS are every key the batch touches (as Cluster wants them declared); ARGV[1] is the batch as
JSON: `now` (unix s), `ttl` (ms an account lives idle), `lease` (ms a reservation lives), `ops`.
An admit op names its accounts and reservation by KEYS index with each claim's figures; the
answer per admit is `{ok, s (window seconds), h (what headers show), x (resets), f (refusal)}`.
"""

from __future__ import annotations

LEDGER_SCRIPT = r"""
local batch = cjson.decode(ARGV[1])
local now = batch.now
local second = math.floor(now)
local SLOTS = 61
local EPS = 1e-9
local TTL = batch.ttl
local LEASE = batch.lease

local function fmt(x) return string.format('%.17g', x) end
local function num(v) if v then return tonumber(v) end return nil end

-- Calendar months in UTC (days from 1970-01-01 to a civil date and back).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
local function civil_from_days(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m
  if mp < 10 then m = mp + 3 else m = mp - 9 end
  if m <= 2 then y = y + 1 end
  return y, m, d
end
local function add_months(t, n)
  local days = math.floor(t / 86400)
  local rest = t - days * 86400
  local y, m, d = civil_from_days(days)
  local index = y * 12 + (m - 1) + n
  local y2 = math.floor(index / 12)
  local m2 = index - y2 * 12 + 1
  local ny, nm = y2, m2 + 1
  if nm == 13 then ny, nm = y2 + 1, 1 end
  local length = days_from_civil(ny, nm, 1) - days_from_civil(y2, m2, 1)
  return days_from_civil(y2, m2, math.min(d, length)) * 86400 + rest
end
local function after(c, start)
  if c.ds then return start + c.ds end
  return add_months(start, c.dm)
end
local function reset_after(c, reset_at, t)
  if c.ds then
    local periods = math.floor((t - reset_at) / c.ds) + 1
    return reset_at + math.max(periods, 1) * c.ds
  end
  local upcoming = after(c, reset_at)
  while upcoming <= t do upcoming = after(c, upcoming) end
  return upcoming
end

local function load(k)
  local v = redis.call('HMGET', k, 'sp', 'rv', 'fl', 'ra', 'w', 'q', 'tk', 'le')
  return {sp = num(v[1]), rv = num(v[2]) or 0, fl = num(v[3]) or 0, ra = num(v[4]), w = num(v[5]),
          q = num(v[6]) or 0, tk = num(v[7]) or 0, le = num(v[8])}
end
local function save(k, a)
  local f = {'sp', fmt(a.sp), 'rv', fmt(a.rv), 'fl', fmt(a.fl), 'q', fmt(a.q), 'tk', fmt(a.tk)}
  if a.ra then f[#f + 1] = 'ra'; f[#f + 1] = fmt(a.ra) end
  if a.w then f[#f + 1] = 'w'; f[#f + 1] = fmt(a.w) end
  if a.le then f[#f + 1] = 'le'; f[#f + 1] = fmt(a.le) end
  redis.call('HSET', k, unpack(f))
  redis.call('PEXPIRE', k, TTL)
end

-- The window (control/windows.py: SlidingWindow).
local function advance(k, a)
  local last = a.w
  if last == nil or second >= last + SLOTS then
    if last ~= nil then
      local f = {}
      for i = 0, SLOTS - 1 do f[#f + 1] = 'q' .. i; f[#f + 1] = 't' .. i end
      redis.call('HDEL', k, unpack(f))
    end
    a.q, a.tk = 0, 0
  elseif second > last then
    for s = last + 1, second do
      local slot = s % SLOTS
      local v = redis.call('HMGET', k, 'q' .. slot, 't' .. slot)
      if v[1] or v[2] then
        a.q = a.q - (num(v[1]) or 0)
        a.tk = a.tk - (num(v[2]) or 0)
        redis.call('HDEL', k, 'q' .. slot, 't' .. slot)
      end
    end
  else
    return last
  end
  a.w = second
  return second
end
local function until_empty(k, a)
  advance(k, a)
  if (a.q == 0 and a.tk == 0) or a.le == nil then return 0 end
  return math.max(a.le + SLOTS - now, 0)
end
local function until_free(k, a, requests, tokens, rl, tl)
  local s = advance(k, a)
  local over_r, over_t = 0, 0
  if rl then over_r = a.q + requests - rl end
  if tl then over_t = a.tk + tokens - tl end
  if over_r <= 0 and over_t <= 0 then return 0 end
  for oldest = s - SLOTS + 1, s do
    local slot = oldest % SLOTS
    local v = redis.call('HMGET', k, 'q' .. slot, 't' .. slot)
    over_r = over_r - (num(v[1]) or 0)
    over_t = over_t - (num(v[2]) or 0)
    if over_r <= 0 and over_t <= 0 then return math.max(oldest + SLOTS - now, 0) end
  end
  return until_empty(k, a)
end
local function correct(k, a, s, delta)
  local current = a.w
  if current == nil or not (current - SLOTS < s and s <= current) then return end
  local field = 't' .. (s % SLOTS)
  local have = num(redis.call('HGET', k, field)) or 0
  delta = math.max(delta, -have)
  redis.call('HSET', k, field, fmt(have + delta))
  a.tk = a.tk + delta
end

local function admit(op)
  local n = #op.a
  local accs, resets = {}, {}
  for i = 1, n do
    local k, c = KEYS[op.a[i]], op.c[i]
    local a = load(k)
    if a.sp == nil then a.sp = c.s or 0; a.ra = c.r end
    if c.ds or c.dm then
      local prev = a.ra
      if prev == nil then
        a.ra = after(c, now)
        resets[#resets + 1] = {i, a.ra, false}
      elseif now >= prev then
        a.sp = 0
        a.ra = reset_after(c, prev, now)
        resets[#resets + 1] = {i, a.ra, prev}
      end
    end
    accs[i] = a
  end
  local cost, refusal = op.cost, false
  for i = 1, n do
    local c, a = op.c[i], accs[i]
    if c.b and (a.sp >= c.b or a.sp + a.rv + cost > c.b + EPS) then
      refusal = {'b', i, a.sp, a.rv, a.ra or false}
      break
    end
  end
  if not refusal then
    for i = 1, n do
      local c, a, k = op.c[i], accs[i], KEYS[op.a[i]]
      if c.rpm then
        advance(k, a)
        if a.q + 1 > c.rpm then
          refusal = {'r', i, a.q, until_free(k, a, 1, 0, c.rpm, nil)}
          break
        end
      end
    end
  end
  if not refusal then
    for i = 1, n do
      local c, a, k = op.c[i], accs[i], KEYS[op.a[i]]
      if c.tpm then
        advance(k, a)
        if a.tk + op.p > c.tpm then
          refusal = {'t', i, a.tk, until_free(k, a, 0, op.p, nil, c.tpm)}
          break
        end
      end
    end
  end
  if not refusal then
    for i = 1, n do
      local c, a = op.c[i], accs[i]
      if c.par and a.fl + 1 > c.par then
        refusal = {'p', i, a.fl}
        break
      end
    end
  end
  local secs, views = {}, {}
  for i = 1, n do
    local c, a, k = op.c[i], accs[i], KEYS[op.a[i]]
    local windowed = c.rpm or c.tpm
    secs[i] = false
    if not refusal then
      a.rv = a.rv + cost
      a.fl = a.fl + 1
      if windowed then
        local s = advance(k, a)
        local slot = s % SLOTS
        redis.call('HINCRBY', k, 'q' .. slot, 1)
        redis.call('HINCRBY', k, 't' .. slot, op.t)
        a.q = a.q + 1
        a.tk = a.tk + op.t
        a.le = s
        secs[i] = s
      end
    end
    if windowed then
      local empty_in = until_empty(k, a)  -- advances the window first: the totals below are now's
      views[i] = {a.sp, a.q, a.tk, empty_in}
    else
      views[i] = {a.sp}
    end
    save(k, a)
  end
  if not refusal then
    redis.call('SET', KEYS[op.r], '1', 'PX', LEASE)
  end
  return {refusal, secs, views, resets}
end

local function settle(op)
  if redis.call('DEL', KEYS[op.r]) == 0 then return 0 end
  for i = 1, #op.a do
    local k = KEYS[op.a[i]]
    if redis.call('EXISTS', k) == 1 then
      local a = load(k)
      a.sp = a.sp + op.real
      a.fl = math.max(a.fl - 1, 0)
      if a.fl > 0 then a.rv = math.max(a.rv - op.cost, 0) else a.rv = 0 end
      local s = op.s[i]
      if op.dt and op.dt ~= 0 and s then correct(k, a, s, op.dt) end
      save(k, a)
    end
  end
  return 1
end

-- Spend settled locally while Redis was away: added to the accounts Redis still holds (one it
-- lost is seeded again from its record, which has that spend).
local function add_spend(op)
  for i = 1, #op.a do
    local k = KEYS[op.a[i]]
    if redis.call('EXISTS', k) == 1 then
      local a = load(k)
      a.sp = a.sp + op.real
      save(k, a)
    end
  end
  return 1
end

local out = {}
for i, op in ipairs(batch.ops) do
  if op.o == 'a' then
    out[i] = admit(op)
  elseif op.o == 'add' then
    out[i] = add_spend(op)
  else
    out[i] = settle(op)
  end
end
return cjson.encode(out)
"""
