-- A message, a deadline or a retry names a saga whose hash is gone (an
-- eviction, a stray DEL, a FLUSHDB): the consumed entry goes to the
-- dead-letter stream, the saga leaves the deadlines, retries and status
-- indexes, its record (when it still exists) is marked FAILED, and an alert
-- is raised once per saga.
--
-- KEYS[1] consumed stream (any key of the slot when none is consumed)
-- KEYS[2] saga hash
-- KEYS[3] record references (hash: saga id → "<kind>:<id>")
-- KEYS[4] the saga's missing marker (a key with a TTL: alerted once)
-- KEYS[5] the saga's record (the saga hash when it has none)
-- KEYS[6] dead-letter stream
-- KEYS[7] alerts stream
-- KEYS[8] deadlines sorted set
-- KEYS[9] retries sorted set
-- KEYS[10..14] status indexes
-- ARGV[1] group ('' when no entry is consumed)
-- ARGV[2] consumed entry id ('' when none)
-- ARGV[3] saga id
-- ARGV[4] record reference the caller read ('' when none)
-- ARGV[5] marker TTL, seconds
-- ARGV[6] where the loss was found, e.g. "payment/order.created", "deadline"
-- ARGV[7] retries member to remove ('' when none)
-- ARGV[8..] the dead-letter entry's field/value pairs (none when no entry)
-- Returns 'EXISTS' (the saga is there after all: nothing written),
-- 'ALERTED' (first report) or 'KNOWN'.

if redis.call('EXISTS', KEYS[2]) == 1 then
  return 'EXISTS'
end
if ARGV[2] ~= '' then
  local dead = {}
  for i = 8, #ARGV do
    dead[#dead + 1] = ARGV[i]
  end
  redis.call('XADD', KEYS[6], '*', unpack(dead))
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('ZREM', KEYS[8], ARGV[3])
if ARGV[7] ~= '' then
  redis.call('ZREM', KEYS[9], ARGV[7])
end
for i = 10, 14 do
  redis.call('ZREM', KEYS[i], ARGV[3])
end
local why = 'saga ' .. ARGV[3] .. ' not found (its hash is gone), found by ' .. ARGV[6]
if ARGV[4] ~= '' and redis.call('HGET', KEYS[3], ARGV[3]) == ARGV[4] then
  if redis.call('EXISTS', KEYS[5]) == 1 then
    local t = redis.call('TIME')
    redis.call('HSET', KEYS[5], 'status', 'FAILED', 'reason', why, 'updated_at', t[1] * 1000 + math.floor(t[2] / 1000))
  end
  redis.call('HDEL', KEYS[3], ARGV[3])
end
if redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[5]) then
  redis.call('XADD', KEYS[7], '*', 'type', 'saga.missing', 'saga_id', ARGV[3], 'record', ARGV[4], 'found_by', ARGV[6], 'error', why)
  return 'ALERTED'
end
return 'KNOWN'
