-- Shared by the scripts that change a saga (prepended to each of them when
-- it is loaded): its writes and its transition.
--
-- Every transition script has the same first nine KEYS:
--   KEYS[1] saga hash            KEYS[6] alerts stream
--   KEYS[2] deadlines sorted set KEYS[7] record references (hash)
--   KEYS[3] stream of the next message (any key of the slot when none)
--   KEYS[4] status index of the status the saga has (its entry moves)
--   KEYS[5] status index of the new status
--   KEYS[8] the saga's record (the saga hash when it has none)
--   KEYS[9] retries sorted set
-- and, from an index b of its ARGV, the same sixteen values, then the saga
-- hash's field/value pairs to set (see transition).

local function now_ms()
  local t = redis.call('TIME')
  return t[1] * 1000 + math.floor(t[2] / 1000)
end

-- Writes of an operation: at ARGV[i] their number, then five values each:
-- op ('hset', 'hincrby', 'take'), the index of the key in KEYS, field,
-- value, and for a take the reason of the failure. check_writes validates
-- them and returns the reason of the first take that cannot be applied (or
-- nil), and the index after them; apply_writes applies them.
local function check_writes(i)
  local n = tonumber(ARGV[i])
  local ops = {hset = true, hincrby = true, take = true}
  local failed = nil
  local need = {} -- takes of one field add up
  for j = i + 1, i + 5 * n, 5 do
    if not ops[ARGV[j]] or not KEYS[tonumber(ARGV[j + 1])] then
      error('bad write ' .. tostring(ARGV[j])) -- before any write: nothing applied
    end
    if ARGV[j] == 'take' and not failed then
      local key, field = KEYS[tonumber(ARGV[j + 1])], ARGV[j + 2]
      local id = key .. '\0' .. field
      need[id] = (need[id] or 0) + tonumber(ARGV[j + 3])
      if tonumber(redis.call('HGET', key, field) or '0') < need[id] then
        failed = ARGV[j + 4]
      end
    end
  end
  return failed, i + 5 * n + 1
end

local function apply_writes(i)
  local n = tonumber(ARGV[i])
  for j = i + 1, i + 5 * n, 5 do
    local op, key = ARGV[j], KEYS[tonumber(ARGV[j + 1])]
    if op == 'hset' then
      redis.call('HSET', key, ARGV[j + 2], ARGV[j + 3])
    elseif op == 'hincrby' then
      redis.call('HINCRBY', key, ARGV[j + 2], ARGV[j + 3])
    else
      redis.call('HINCRBY', key, ARGV[j + 2], -tonumber(ARGV[j + 3]))
    end
  end
end

-- read_saga reads what the scripts check of a saga: {version, status, mode,
-- h.<version> (what it published at that version), saga_deadline_at,
-- saga_id}. The id is the end of the hash's key, not a field of it.
local function read_saga(version)
  local cur = redis.call('HMGET', KEYS[1], 'version', 'status', 'mode', 'h.' .. version, 'saga_deadline_at')
  cur[6] = string.match(KEYS[1], '^.*:saga:(.*)$')
  return cur
end

-- The fence: is the consumed message the one the saga waits for? ident is
-- "<mode>|<type>|<id>" ('*' as the type matches any). Returns nil when it
-- is, else the refusal to return.
local function fence(cur, expected, ident)
  if not cur[1] then
    return {'MISSING', 0}
  end
  local version = tonumber(cur[1])
  local mode, typ, id = string.match(ident, '^([^|]*)|([^|]*)|(.*)$')
  local rtyp, rid = string.match(cur[4] or '', '^%d+|([^|]*)|(.*)$')
  if mode ~= cur[3] or rid ~= id or (typ ~= '*' and rtyp ~= typ) then
    return {'REJECTED', version, 'not the message the saga published at version ' .. expected}
  end
  if version ~= tonumber(expected) then
    return {'STALE', version}
  end
  if cur[2] == 'COMPLETED' or cur[2] == 'COMPENSATED' then
    return {'REJECTED', version, 'a transition of a finished (' .. cur[2] .. ') saga'}
  end
  return nil
end

-- fenced is fence for a script that consumes an entry (group in ARGV[1],
-- id in ARGV[2], of the stream KEYS[stream]): a STALE entry is
-- acknowledged unless keep is '1' (the caller undoes an effect made
-- outside the script first).
local function fenced(cur, expected, ident, stream, keep)
  local refused = fence(cur, expected, ident)
  if refused and refused[1] == 'STALE' and keep ~= '1' then
    redis.call('XACK', KEYS[stream], ARGV[1], ARGV[2])
  end
  return refused
end

-- transition applies the saga's change from ARGV[b]:
--   b      new status ('' leaves it)
--   b+1    the new step's timeout, ms (0 clears the deadline)
--   b+2    retention, s (> 0: the saga ended; its hash and record expire)
--   b+3    history entry "<type>|<what>" recorded without a message ('')
--   b+4..9 the next message: event id ('' for none), type, mode, causation
--          id, occurred at, data
--   b+10   the record's new status ('' leaves the record), b+11 its reason
--   b+12   alert type ('' for none), b+13 the step, b+14 the error
--   b+15   re-send the current command after this many ms ('' no retry)
-- then, from index tail, the saga hash's field/value pairs. cur is what
-- read_saga read. Returns the new version.
local function transition(b, tail, cur)
  -- Redis's own clock, not the id of the entry published below: an entry
  -- id in the future (forged with an explicit id) would carry every later
  -- id, and every deadline, with it.
  local now = now_ms()
  local saga_id = cur[6]
  local v = tonumber(cur[1]) + 1
  local status_to = ARGV[b]
  local moves = status_to ~= '' and status_to ~= cur[2]
  if moves and string.sub(KEYS[4], -#cur[2] - 1) ~= ':' .. cur[2] then
    error('status index ' .. KEYS[4] .. ' is not that of ' .. tostring(cur[2])) -- before any write
  end
  -- Every field of the saga hash goes in one HSET: each redis.call costs
  -- more than the fields it carries.
  local hist = ARGV[b + 3]
  if ARGV[b + 4] ~= '' then
    hist = ARGV[b + 5] .. '|' .. ARGV[b + 4]
    redis.call('XADD', KEYS[3], '*', 'event_id', ARGV[b + 4], 'type', ARGV[b + 5], 'saga_id', saga_id,
      'saga_mode', ARGV[b + 6], 'saga_version', v, 'causation_id', ARGV[b + 7], 'occurred_at', ARGV[b + 8],
      'data', ARGV[b + 9])
  end
  local f = {unpack(ARGV, tail, #ARGV)}
  local n = #f
  f[n + 1], f[n + 2], f[n + 3], f[n + 4] = 'version', v, 'updated_at', now
  n = n + 4
  if hist ~= '' then
    f[n + 1], f[n + 2] = 'h.' .. v, now .. '|' .. hist
    n = n + 2
  end
  local timeout = tonumber(ARGV[b + 1])
  local status_after = moves and status_to or cur[2]
  if timeout > 0 then
    local deadline = now + timeout
    if cur[5] and status_after == 'IN_PROGRESS' then
      -- The whole saga's deadline (SAGA_TIMEOUT) bounds every forward
      -- step's; compensations get their own step timeout.
      deadline = math.min(deadline, tonumber(cur[5]))
    end
    f[n + 1], f[n + 2] = 'deadline_at', deadline
    redis.call('ZADD', KEYS[2], deadline, saga_id)
  else
    f[n + 1], f[n + 2] = 'deadline_at', '' -- none: cheaper than an HDEL
    redis.call('ZREM', KEYS[2], saga_id)
  end
  redis.call('HSET', KEYS[1], unpack(f))
  if ARGV[b + 10] ~= '' and KEYS[8] ~= KEYS[1] and redis.call('EXISTS', KEYS[8]) == 1 then
    redis.call('HSET', KEYS[8], 'status', ARGV[b + 10], 'reason', ARGV[b + 11], 'updated_at', now)
  end
  if ARGV[b + 12] ~= '' then
    redis.call('XADD', KEYS[6], '*', 'type', ARGV[b + 12], 'saga_id', saga_id, 'step', ARGV[b + 13], 'error', ARGV[b + 14])
  end
  if ARGV[b + 15] ~= '' then
    redis.call('ZADD', KEYS[9], now + tonumber(ARGV[b + 15]), saga_id .. '|' .. v)
  end
  -- The status index and the TTLs change only with the status.
  if moves then
    redis.call('ZREM', KEYS[4], saga_id)
    redis.call('ZADD', KEYS[5], now, saga_id)
  end
  local retention = tonumber(ARGV[b + 2])
  if retention > 0 then
    redis.call('HDEL', KEYS[7], saga_id)
    redis.call('EXPIRE', KEYS[1], retention)
    if KEYS[8] ~= KEYS[1] then
      redis.call('EXPIRE', KEYS[8], retention)
    end
  end
  return v
end
