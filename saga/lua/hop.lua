-- Commits one hop of a saga: a step's operation handled the message the
-- saga waits for. The fence (the saga's version and the identity of the
-- message it waits for), the operation's writes on the saga's partition,
-- the saga's transition and the XACK of the message apply together or not
-- at all.
--
-- KEYS[1..9]   the transition's keys (prelude)
-- KEYS[10]     the consumed stream
-- KEYS[11..]   keys of the writes
-- ARGV[1]      group
-- ARGV[2]      consumed entry id
-- ARGV[3]      the saga version the message was published at
-- ARGV[4]      its identity "<mode>|<type>|<id>"
-- ARGV[5]      for a compensation, its step's index: the writes apply only
--              if that step had COMPLETED (a null compensation writes
--              nothing); '' for an execution
-- ARGV[6]      '1' leaves the entry pending when the saga moved on (STALE):
--              the caller undoes an effect made outside this script first
-- ARGV[7..22]  the transition (prelude, b = 7)
-- ARGV[23]     the writes (prelude), then the saga hash's field/value pairs
-- Returns {'OK', version}; {'STALE', version}; {'REJECTED', version,
-- reason}; {'MISSING', 0}; {'TAKE', version, reason}: a take found too
-- little, nothing is written and the caller commits the step's failure.
-- Only OK and STALE (unless ARGV[6]) acknowledge the entry.

local cur = read_saga(ARGV[3])
local refused = fenced(cur, ARGV[3], ARGV[4], 10, ARGV[6])
if refused then
  return refused
end
local failed, tail = check_writes(23)
local apply = ARGV[5] == '' or redis.call('HGET', KEYS[1], 'step.' .. ARGV[5] .. '.status') == 'COMPLETED'
if failed and apply then
  return {'TAKE', tonumber(cur[1]), failed}
end
local v = transition(7, tail, cur)
if apply then
  apply_writes(23)
end
redis.call('XACK', KEYS[10], ARGV[1], ARGV[2])
return {'OK', v}
