"""The Lua scripts behind the Redis journal and pool: each state change is one script.

Redis runs a script atomically, so each step (claim a row, enqueue it in a pool,
hand pooled rows to one flusher, record results) either happens whole or not at
all, whichever replica runs it. All keys share the namespace's hash tag (see
:mod:`engine.pool.connect`), so in a cluster a script never spans two slots.

Key layout under the prefix ``P`` (``{namespace}:``)::

    P i:<hash>          HASH  one journal row (the fields of JournalEntry, plus ``pool``)
    P open              ZSET  non-final rows by lease expiry (pooled rows: +POOLED, never expire)
    P final             ZSET  final rows by last update (pruning)
    P o:<owner>         SET   non-final rows of an owner (lease renewal)
    P b:<batch id>      SET   rows sent in a batch
    P q:<credential>    ZSET  rows in the API's processing queue, by time (queue-depth limit)
    P p:<pool>:s        STREAM pooled calls waiting for a batch; consumer group ``flushers``
    P p:<pool>:lease    STRING the token of the one process flushing that pool (PX lease)
    P done              channel: hashes whose rows became final, comma-joined
"""

from __future__ import annotations

__all__ = [
    "CLAIM",
    "GROUP",
    "LEASE_ACQUIRE",
    "LEASE_RELEASE",
    "LEASE_RENEW",
    "MARK_SENDING",
    "MARK_SUBMITTED",
    "POOLED",
    "POOL_ADD",
    "POOL_TAKE",
    "PRUNE",
    "RECORD",
    "RELEASE",
    "RENEW",
    "TAKE_OVER",
]

#: The lease expiry of a pooled row: its owner is the pool, which no lease-based take-over touches.
POOLED = 1e18
GROUP = "flushers"

_PRELUDE = """
local P = ARGV[1]
local function row(h) return P .. 'i:' .. h end
local function is_final(s) return s == 'succeeded' or s == 'direct' or s == 'failed' end
local function own(h, old, new, expires)
  if old and old ~= '' and old ~= new and string.sub(old, 1, 5) ~= 'pool:' then
    redis.call('SREM', P .. 'o:' .. old, h)
  end
  if string.sub(new, 1, 5) ~= 'pool:' then redis.call('SADD', P .. 'o:' .. new, h) end
  redis.call('HSET', row(h), 'owner', new, 'lease_expires', expires)
  redis.call('ZADD', P .. 'open', expires, h)
end
local function close(h, owner, credential, now)
  if owner and owner ~= '' then redis.call('SREM', P .. 'o:' .. owner, h) end
  redis.call('ZREM', P .. 'open', h)
  redis.call('ZADD', P .. 'final', now, h)
  if credential then redis.call('ZREM', P .. 'q:' .. credential, h) end
end
local function fill(k, e)
  if e.call_site then redis.call('HSET', k, 'call_site', e.call_site) end
  if e.params then redis.call('HSET', k, 'params', e.params) end
end
"""

# ARGV: P, now, owner, expires, stale_before (-1: none), entry JSON...
CLAIM = (
    _PRELUDE
    + """
local now, owner, expires, stale = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local out = {}
for i = 6, #ARGV do
  local e = cjson.decode(ARGV[i])
  local k = row(e.h)
  local state = redis.call('HGET', k, 'state')
  if not state then
    redis.call('HSET', k, 'custom_id', e.custom_id, 'credential', e.credential, 'base_url', e.base_url,
      'state', 'pending', 'attempts', e.attempts, 'retries', e.retries, 'on_failure', e.on_failure,
      'created_at', now, 'updated_at', now)
    fill(k, e)
    own(e.h, nil, owner, expires)
  else
    local f = redis.call('HMGET', k, 'updated_at', 'lease_expires', 'owner', 'params')
    local final = is_final(state)
    if state == 'failed' or (final and stale >= 0 and tonumber(f[1]) < stale) then
      redis.call('HDEL', k, 'batch_id', 'sent_at', 'result', 'error', 'call_site', 'params', 'pool',
        'pool_fill', 'pool_wait_ms')
      redis.call('HSET', k, 'state', 'pending', 'attempts', 0, 'retries', e.retries,
        'on_failure', e.on_failure, 'updated_at', now)
      fill(k, e)
      redis.call('ZREM', P .. 'final', e.h)
      own(e.h, nil, owner, expires)
    elseif (not final) and tonumber(f[2]) < tonumber(now) then
      own(e.h, f[3], owner, expires)
      redis.call('HSET', k, 'updated_at', now)
      if not f[4] and e.params then redis.call('HSET', k, 'params', e.params) end
    end
  end
  out[#out + 1] = redis.call('HGETALL', k)
end
return out
"""
)

# ARGV: P, now, owner, hash...
MARK_SENDING = (
    _PRELUDE
    + """
for i = 4, #ARGV do
  local k = row(ARGV[i])
  local f = redis.call('HMGET', k, 'state', 'owner')
  if f[1] == 'pending' and f[2] == ARGV[3] then
    redis.call('HSET', k, 'sent_at', ARGV[2], 'updated_at', ARGV[2])
  end
end
return 0
"""
)

# ARGV: P, now, owner, batch id, retention seconds, hash...
MARK_SUBMITTED = (
    _PRELUDE
    + """
local b = P .. 'b:' .. ARGV[4]
for i = 6, #ARGV do
  local k = row(ARGV[i])
  local f = redis.call('HMGET', k, 'state', 'owner', 'credential')
  if f[1] == 'pending' and f[2] == ARGV[3] then
    redis.call('HSET', k, 'state', 'submitted', 'batch_id', ARGV[4], 'updated_at', ARGV[2])
    redis.call('SADD', b, ARGV[i])
    redis.call('ZADD', P .. 'q:' .. f[3], ARGV[2], ARGV[i])  -- in the API's queue until it ends
  end
end
redis.call('EXPIRE', b, ARGV[5])
return 0
"""
)

# ARGV: P, now, outcome JSON {h, state, attempts, result?, error?}...
RECORD = (
    _PRELUDE
    + """
local now = ARGV[2]
local done = {}
for i = 3, #ARGV do
  local o = cjson.decode(ARGV[i])
  local k = row(o.h)
  local f = redis.call('HMGET', k, 'state', 'owner', 'credential')
  if f[1] and f[1] ~= 'succeeded' and f[1] ~= 'direct' then
    redis.call('HSET', k, 'state', o.state, 'attempts', o.attempts, 'updated_at', now)
    if o.result then redis.call('HSET', k, 'result', o.result) else redis.call('HDEL', k, 'result') end
    if o.error then redis.call('HSET', k, 'error', o.error) else redis.call('HDEL', k, 'error') end
    if o.state == 'pending' then redis.call('HDEL', k, 'batch_id', 'sent_at') end
    if is_final(o.state) then
      redis.call('HDEL', k, 'params')
      close(o.h, f[2], f[3], now)
      done[#done + 1] = o.h
    end
  end
end
if #done > 0 then redis.call('PUBLISH', P .. 'done', table.concat(done, ',')) end
return #done
"""
)

# ARGV: P, owner, expires
RENEW = (
    _PRELUDE
    + """
local set = P .. 'o:' .. ARGV[2]
local n = 0
for _, h in ipairs(redis.call('SMEMBERS', set)) do
  local f = redis.call('HMGET', row(h), 'state', 'owner')
  if f[1] and not is_final(f[1]) and f[2] == ARGV[2] then
    redis.call('HSET', row(h), 'lease_expires', ARGV[3])
    redis.call('ZADD', P .. 'open', ARGV[3], h)
    n = n + 1
  else
    redis.call('SREM', set, h)
  end
end
return n
"""
)

# ARGV: P, now, owner, expires
TAKE_OVER = (
    _PRELUDE
    + """
local out = {}
for _, h in ipairs(redis.call('ZRANGEBYSCORE', P .. 'open', '-inf', '(' .. ARGV[2])) do
  local f = redis.call('HMGET', row(h), 'state', 'owner')
  if f[1] and not is_final(f[1]) then
    own(h, f[2], ARGV[3], ARGV[4])
    out[#out + 1] = {h, redis.call('HGETALL', row(h))}
  else
    redis.call('ZREM', P .. 'open', h)
  end
end
return out
"""
)

# ARGV: P, owner, hash...
RELEASE = (
    _PRELUDE
    + """
for i = 3, #ARGV do
  local f = redis.call('HMGET', row(ARGV[i]), 'state', 'owner')
  if f[1] and not is_final(f[1]) and f[2] == ARGV[2] then
    redis.call('HSET', row(ARGV[i]), 'lease_expires', 0)
    redis.call('ZADD', P .. 'open', 0, ARGV[i])
  end
end
return 0
"""
)

# ARGV: P, cutoff, limit
PRUNE = (
    _PRELUDE
    + """
local n = 0
for _, h in ipairs(redis.call('ZRANGEBYSCORE', P .. 'final', '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])) do
  if is_final(redis.call('HGET', row(h), 'state') or 'succeeded') then
    redis.call('DEL', row(h))
    n = n + 1
  end
  redis.call('ZREM', P .. 'final', h)
end
return n
"""
)

# Hand a claimed row to a pool: its owner becomes the pool, and the call joins the stream.
# KEYS: the stream. ARGV: P, owner (the claimant), pool id, hash, bytes, max requests,
# max wait (ms), deadline (ms)
POOL_ADD = (
    _PRELUDE
    + """
local h = ARGV[4]
local k = row(h)
local f = redis.call('HMGET', k, 'state', 'owner', 'sent_at')
if f[1] ~= 'pending' or f[2] ~= ARGV[2] or f[3] then return 0 end
own(h, f[2], 'pool:' .. ARGV[3], '"""
    + repr(POOLED)
    + """')
redis.call('HSET', k, 'pool', ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.pcall('XGROUP', 'CREATE', KEYS[1], '"""
    + GROUP
    + """', '0', 'MKSTREAM')
end
redis.call('XADD', KEYS[1], '*', 'h', h, 'n', ARGV[5], 'mr', ARGV[6], 'mw', ARGV[7], 'dl', ARGV[8])
return 1
"""
)

# The flusher takes pooled rows for one batch, if it still holds the pool's lease.
# KEYS: the stream, the lease. ARGV: P, now, token, owner, expires, pool id, queue limit,
# queue window start, then (entry id, hash) pairs.
# Returns -1 (lease lost) or {taken hashes, deferred entry ids (queue full)}.
POOL_TAKE = (
    _PRELUDE
    + """
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return -1 end
local now, owner, expires, pool = ARGV[2], ARGV[4], ARGV[5], 'pool:' .. ARGV[6]
local limit = tonumber(ARGV[7])
local room = {}
local taken, deferred = {}, {}
for i = 9, #ARGV, 2 do
  local id, h = ARGV[i], ARGV[i + 1]
  local f = redis.call('HMGET', row(h), 'state', 'owner', 'credential')
  if f[1] == 'pending' and f[2] == pool then
    local q = P .. 'q:' .. f[3]
    if room[q] == nil then
      redis.call('ZREMRANGEBYSCORE', q, '-inf', '(' .. ARGV[8])
      room[q] = limit - redis.call('ZCARD', q)
    end
    if room[q] > 0 then
      room[q] = room[q] - 1
      redis.call('ZADD', q, now, h)
      own(h, f[2], owner, expires)
      redis.call('HSET', row(h), 'updated_at', now)
      redis.call('XACK', KEYS[1], '"""
    + GROUP
    + """', id)
      redis.call('XDEL', KEYS[1], id)
      taken[#taken + 1] = h
    else
      deferred[#deferred + 1] = id
    end
  else
    redis.call('XACK', KEYS[1], '"""
    + GROUP
    + """', id)
    redis.call('XDEL', KEYS[1], id)
  end
end
return {taken, deferred}
"""
)

# KEYS: the lease. ARGV: token, ttl (ms)
LEASE_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""

# KEYS: the lease. ARGV: token
LEASE_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: the lease. ARGV: token, ttl (ms)
LEASE_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""
