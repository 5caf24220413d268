-- Starts a saga: its hash, its record (the order), the first event, its
-- deadline, its status index entry and the Idempotency-Key record, all or
-- nothing. A retried request with the same key gets the first answer back.
--
-- KEYS[1] idempotency record (a hash; touched only when ARGV[1] ~= '')
-- KEYS[2] saga hash
-- KEYS[3] record hash
-- KEYS[4] stream of the first event
-- KEYS[5] deadlines sorted set
-- KEYS[6] IN_PROGRESS status index
-- KEYS[7] record references (hash: saga id → "<kind>:<id>" of its record,
--         so that a saga whose hash is lost can still fail its record)
-- ARGV[1] request fingerprint ('' when the request has no Idempotency-Key)
-- ARGV[2] idempotency record TTL, seconds
-- ARGV[3] step timeout, ms, optionally ":<saga timeout, ms>"
-- ARGV[4] saga id
-- ARGV[5] answer to remember under the key
-- ARGV[6] history entry of the first event, "<type>|<event id>"
-- ARGV[7] the record's reference "<kind>:<id>" ('' when there is none)
-- ARGV[8] number of saga field/value pairs, then the pairs,
--         then the number of record pairs and the pairs,
--         then the number of event pairs and the pairs
-- Returns {'OK', answer}, {'DUP', first answer} or {'MISMATCH', first answer}
-- (the key was used before with another request).

if ARGV[1] ~= '' then
  local prev = redis.call('HMGET', KEYS[1], 'fingerprint', 'answer')
  if prev[1] then
    if prev[1] == ARGV[1] then
      return {'DUP', prev[2]}
    end
    return {'MISMATCH', prev[2]}
  end
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('saga id collision')
end

-- The saga's and the record's fields, each with the fields the script adds,
-- go in one HSET each: every redis.call costs more than its fields.
local ns = tonumber(ARGV[8])
local saga = {unpack(ARGV, 9, 8 + 2 * ns)}
local i = 9 + 2 * ns
local nr = tonumber(ARGV[i])
local record = {unpack(ARGV, i + 1, i + 2 * nr)}
local j = i + 2 * nr + 1
local ne = tonumber(ARGV[j])

local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local step_ms, saga_ms = string.match(ARGV[3], '^(%d+):?(%d*)$')
local deadline = now + tonumber(step_ms)
local n = #saga
if saga_ms ~= '' then
  -- The whole saga's deadline bounds every step's.
  local saga_deadline = now + tonumber(saga_ms)
  saga[n + 1], saga[n + 2] = 'saga_deadline_at', saga_deadline
  n = n + 2
  deadline = math.min(deadline, saga_deadline)
end
saga[n + 1], saga[n + 2], saga[n + 3], saga[n + 4] = 'version', 1, 'created_at', now
saga[n + 5], saga[n + 6], saga[n + 7], saga[n + 8] = 'updated_at', now, 'deadline_at', deadline
saga[n + 9], saga[n + 10] = 'h.1', now .. '|' .. ARGV[6]
redis.call('HSET', KEYS[2], unpack(saga))
if nr > 0 then
  n = #record
  record[n + 1], record[n + 2], record[n + 3], record[n + 4] = 'created_at', now, 'updated_at', now
  redis.call('HSET', KEYS[3], unpack(record))
end
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[7], ARGV[4], ARGV[7])
end
redis.call('XADD', KEYS[4], '*', unpack(ARGV, j + 1, j + 2 * ne))
redis.call('ZADD', KEYS[5], deadline, ARGV[4])
redis.call('ZADD', KEYS[6], now, ARGV[4])
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'answer', ARGV[5])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return {'OK', ARGV[5]}
