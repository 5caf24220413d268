-- A service answers an orchestrator's command: its operation's writes on
-- the saga's partition and the reply, once per command (a copy of a command
-- already answered is only acknowledged), fenced like a hop on the command
-- being the one the saga waits for. The orchestrator's transition on the
-- reply comes after.
--
-- KEYS[1]      saga hash
-- KEYS[2]      the consumed command's stream
-- KEYS[3]      the reply stream
-- KEYS[4..]    keys of the writes
-- ARGV[1]      group
-- ARGV[2]      entry id
-- ARGV[3]      the command's saga version
-- ARGV[4]      its identity "<mode>|<type>|<id>"
-- ARGV[5]      for a compensation, its step's index: the writes apply only
--              if that step had COMPLETED; '' for an execution
-- ARGV[6]      '1' leaves the entry pending when the saga moved on (STALE)
-- ARGV[7..11]  the reply: event id, mode, causation id (the command's id),
--              occurred at, data
-- ARGV[12]     the writes (prelude)
-- Returns {'OK', version}, {'DUP', version}, {'STALE', version},
-- {'REJECTED', version, reason}, {'MISSING', 0} or {'TAKE', version,
-- reason} (nothing written: the caller answers with the failure).

local cur = read_saga(ARGV[3])
local refused = fenced(cur, ARGV[3], ARGV[4], 2, ARGV[6])
if refused then
  return refused
end
local version = tonumber(cur[1])
local failed = check_writes(12)
local apply = ARGV[5] == '' or redis.call('HGET', KEYS[1], 'step.' .. ARGV[5] .. '.status') == 'COMPLETED'
if failed and apply then
  return {'TAKE', version, failed}
end
if redis.call('HSETNX', KEYS[1], 'r.' .. ARGV[3], ARGV[7]) == 0 then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  return {'DUP', version}
end
if apply then
  apply_writes(12)
end
redis.call('XADD', KEYS[3], '*', 'event_id', ARGV[7], 'type', 'saga.reply', 'saga_id', cur[6], 'saga_mode', ARGV[8],
  'saga_version', ARGV[3], 'causation_id', ARGV[9], 'occurred_at', ARGV[10], 'data', ARGV[11])
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
return {'OK', version}
