-- Commits one saga transition atomically: the saga hash, the next event or
-- command, the deadline, the status index, the saga's record, a dead-letter
-- or alert entry, and the XACK of the consumed entry.
--
-- The transition is fenced on the saga's version and on the identity of
-- the message it consumes: it applies only while the hash still has the
-- version the message was published at, and only if the saga recorded that
-- very message (its type and id, h.<version>) when it published at that
-- version. A duplicate, a stale redelivery or a zombie worker finds the
-- version moved on and gets STALE: its entry is acknowledged and nothing
-- else is written. A message the saga never published (a forgery, a replay
-- of the wrong entry, the wrong style) or a transition of a finished saga
-- gets REJECTED: nothing is written, the entry stays pending, and the
-- caller dead-letters it with an alert.
--
-- KEYS[1] saga hash
-- KEYS[2] consumed stream
-- KEYS[3] deadlines sorted set
-- KEYS[4] stream of the next event
-- KEYS[5] record hash (the order)
-- KEYS[6] dead-letter stream
-- KEYS[7] alerts stream
-- KEYS[8..12] status indexes: IN_PROGRESS, COMPENSATING, COMPLETED,
--             COMPENSATED, FAILED
-- KEYS[13] retries sorted set (saga ids scored by when to re-send their
--          current command)
-- KEYS[14] record references (hash: saga id → "<kind>:<id>" of its record,
--          kept while the saga is not finished)
-- ARGV[1] group
-- ARGV[2] consumed entry id ('' = nothing to acknowledge)
-- ARGV[3] expected saga version
-- ARGV[4] new saga status ('' = unchanged)
-- ARGV[5] step timeout, ms; 0 clears the deadline
-- ARGV[6] retention, seconds; > 0 makes the hash and record expire
-- ARGV[7] history entry "<type>|<id>" ('' = none)
-- ARGV[8] flags: 'd' write the dead-letter entry even when the saga has
--         moved on (STALE); 'k' keep the consumed entry pending on STALE
--         (the caller has more to do before acknowledging it). MISSING and
--         REJECTED never write or acknowledge anything: the caller
--         dead-letters the entry with an alert.
-- ARGV[9] retry: '' nothing; 'schedule:<ms>' re-send the current command
--         after <ms> (member "<saga id>|<new version>" in KEYS[13]);
--         'due:<member>' this is that re-send: refused (NOTDUE) unless the
--         member's time has come. A member names the version it was
--         scheduled at, so one left behind by a saga that moved on is
--         recognisably obsolete and never shadows a newer one. 'sweep': a
--         sweeper acting on a passed deadline: refused (NOTDUE) unless the
--         saga's deadline has passed by Redis time, so that a sweeper that
--         read an older due list does not act on a fresh deadline.
-- ARGV[10] identity of the consumed message, "<mode>|<type>|<id>" ('' when
--         the transition consumes none): it must equal what the saga
--         recorded at version ARGV[3]. An orchestration reply names its
--         command's type and id; '*' as the type matches any.
-- ARGV[11] number of saga field/value pairs, then the pairs, then likewise
--         the event's, the record's, the dead-letter entry's and the
--         alert's pairs
-- Returns {code, version}: 'OK' with the new version, 'STALE' with the
-- current one, 'MISSING' with 0 when there is no saga hash, 'NOTDUE',
-- 'REJECTED' with the current version and a reason.

local function pairs_at(i)
  local n = tonumber(ARGV[i])
  local out = {}
  for j = i + 1, i + 2 * n do
    out[#out + 1] = ARGV[j]
  end
  return out, i + 2 * n + 1
end
local saga, i = pairs_at(11)
local ev, j = pairs_at(i)
local record, k = pairs_at(j)
local dead, l = pairs_at(k)
local alert = pairs_at(l)

local indexes = {IN_PROGRESS = 8, COMPENSATING = 9, COMPLETED = 10, COMPENSATED = 11, FAILED = 12}
local status_to = ARGV[4]
if status_to ~= '' and not indexes[status_to] then
  return redis.error_reply('unknown status ' .. status_to)
end

local function ack()
  if ARGV[2] ~= '' then
    redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  end
end

-- On a refusal the entry is acknowledged unless the caller keeps it.
local function refused_ack()
  if not string.find(ARGV[8], 'k', 1, true) then
    ack()
  end
end

local cur = redis.call('HMGET', KEYS[1], 'version', 'status', 'saga_id', 'saga_deadline_at', 'mode', 'h.' .. ARGV[3])
if not cur[1] then
  -- Nothing is written: the caller dead-letters the entry and alerts.
  return {'MISSING', 0}
end
local version = tonumber(cur[1])
if ARGV[10] ~= '' then
  local mode, typ, id = string.match(ARGV[10], '^([^|]*)|([^|]*)|(.*)$')
  local rtyp, rid = string.match(cur[6] or '', '^%d+|([^|]*)|(.*)$')
  if mode ~= cur[5] or rid ~= id or (typ ~= '*' and rtyp ~= typ) then
    return {'REJECTED', version, 'not the message the saga published at version ' .. ARGV[3]}
  end
  if version == tonumber(ARGV[3]) and (cur[2] == 'COMPLETED' or cur[2] == 'COMPENSATED') then
    return {'REJECTED', version, 'a transition of a finished (' .. cur[2] .. ') saga'}
  end
end
if version ~= tonumber(ARGV[3]) then
  if string.find(ARGV[8], 'd', 1, true) and #dead > 0 then
    redis.call('XADD', KEYS[6], '*', unpack(dead))
  end
  local member = string.match(ARGV[9], '^due:(.+)$')
  if member then
    redis.call('ZREM', KEYS[13], member) -- the saga moved on: obsolete
  end
  refused_ack()
  return {'STALE', version}
end

local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if ARGV[9] == 'sweep' then
  local at = redis.call('ZSCORE', KEYS[3], cur[3])
  if not at or tonumber(at) > now then
    return {'NOTDUE', version}
  end
end
local due = string.match(ARGV[9], '^due:(.+)$')
if due then
  local at = redis.call('ZSCORE', KEYS[13], due)
  if not at or tonumber(at) > now then
    return {'NOTDUE', version}
  end
  redis.call('ZREM', KEYS[13], due)
end
local new_version = version + 1
local saga_id = cur[3]
local timeout = tonumber(ARGV[5])

-- One HSET for the whole state change keeps the script cheap.
saga[#saga + 1] = 'version'
saga[#saga + 1] = new_version
saga[#saga + 1] = 'updated_at'
saga[#saga + 1] = now
if ARGV[7] ~= '' then
  saga[#saga + 1] = 'h.' .. new_version
  saga[#saga + 1] = now .. '|' .. ARGV[7]
end
local deadline = now + timeout
local status_after = cur[2]
if status_to ~= '' then
  status_after = status_to
end
if cur[4] and status_after == 'IN_PROGRESS' then
  -- The whole saga's deadline (SAGA_TIMEOUT) bounds every forward step's;
  -- compensations get their own step timeout.
  deadline = math.min(deadline, tonumber(cur[4]))
end
if timeout > 0 then
  saga[#saga + 1] = 'deadline_at'
  saga[#saga + 1] = deadline
end
redis.call('HSET', KEYS[1], unpack(saga))
if timeout > 0 then
  redis.call('ZADD', KEYS[3], deadline, saga_id)
else
  redis.call('ZREM', KEYS[3], saga_id)
  redis.call('HDEL', KEYS[1], 'deadline_at')
end
if #ev > 0 then
  redis.call('XADD', KEYS[4], '*', unpack(ev))
end
if #record > 0 then
  record[#record + 1] = 'updated_at'
  record[#record + 1] = now
  redis.call('HSET', KEYS[5], unpack(record))
end
if #dead > 0 then
  redis.call('XADD', KEYS[6], '*', unpack(dead))
end
if #alert > 0 then
  redis.call('XADD', KEYS[7], '*', unpack(alert))
end

local delay = string.match(ARGV[9], '^schedule:(%d+)$')
if delay then
  redis.call('ZADD', KEYS[13], now + tonumber(delay), saga_id .. '|' .. new_version)
end

if status_to ~= '' and status_to ~= cur[2] then
  if cur[2] and indexes[cur[2]] then
    redis.call('ZREM', KEYS[indexes[cur[2]]], saga_id)
  end
  redis.call('ZADD', KEYS[indexes[status_to]], now, saga_id)
end

if status_to == 'COMPLETED' or status_to == 'COMPENSATED' then
  redis.call('HDEL', KEYS[14], saga_id)
end

local retention = tonumber(ARGV[6])
if retention > 0 then
  redis.call('EXPIRE', KEYS[1], retention)
  if KEYS[5] ~= KEYS[1] then
    redis.call('EXPIRE', KEYS[5], retention)
  end
  -- Index entries of sagas whose hash has expired go too, so the index
  -- stays bounded without a sweeper of its own.
  if status_to ~= '' then
    redis.call('ZREMRANGEBYSCORE', KEYS[indexes[status_to]], '-inf', now - retention * 1000)
  end
end
ack()
return {'OK', new_version}
