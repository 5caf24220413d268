-- A refused compensation's back-off has passed: its command is sent again.
-- The retries set holds "<saga id>|<version>" scored by when; a member of a
-- version the saga has moved past is obsolete and dropped.
--
-- KEYS[1..9]   the transition's keys (prelude)
-- ARGV[1]      the version the member names
-- ARGV[2]      the retries member
-- ARGV[3..18]  the transition (prelude, b = 3)
-- ARGV[19..]   the saga hash's field/value pairs
-- Returns {'OK', version}, {'STALE', version} (member dropped), {'NOTDUE',
-- version} or {'MISSING', 0}.

local cur = read_saga(ARGV[1])
if not cur[1] then
  return {'MISSING', 0}
end
if tonumber(cur[1]) ~= tonumber(ARGV[1]) then
  redis.call('ZREM', KEYS[9], ARGV[2])
  return {'STALE', tonumber(cur[1])}
end
local at = redis.call('ZSCORE', KEYS[9], ARGV[2])
if not at or tonumber(at) > now_ms() then
  return {'NOTDUE', tonumber(cur[1])}
end
local v = transition(3, 19, cur)
redis.call('ZREM', KEYS[9], ARGV[2])
return {'OK', v}
