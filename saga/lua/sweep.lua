-- A saga's deadline passed, judged by Redis time: the sweeper's transition
-- (give up on the step, re-send a compensation, or FAILED). It applies once
-- however many sweepers race: each is fenced on the version it read, and on
-- the deadline having passed (a sweeper that read an older due list does
-- not act on a fresh deadline).
--
-- KEYS[1..9]   the transition's keys (prelude)
-- ARGV[1]      the version the sweeper read
-- ARGV[2..17]  the transition (prelude, b = 2)
-- ARGV[18..]   the saga hash's field/value pairs
-- Returns {'OK', version}, {'STALE', version}, {'NOTDUE', version} or
-- {'MISSING', 0}.

local cur = read_saga(ARGV[1])
if not cur[1] then
  return {'MISSING', 0}
end
if tonumber(cur[1]) ~= tonumber(ARGV[1]) then
  return {'STALE', tonumber(cur[1])}
end
local at = redis.call('ZSCORE', KEYS[2], cur[6])
if not at or tonumber(at) > now_ms() then
  return {'NOTDUE', tonumber(cur[1])}
end
return {'OK', transition(2, 18, cur)}
