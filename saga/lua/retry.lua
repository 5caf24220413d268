-- An operator re-drives a FAILED saga (POST /sagas/{id}/retry): the
-- transition the engine decided from the saga as it read it, fenced on that
-- version (two operators racing: one wins).
--
-- KEYS[1..9]   the transition's keys (prelude)
-- ARGV[1]      the version the engine read
-- ARGV[2..17]  the transition (prelude, b = 2)
-- ARGV[18..]   the saga hash's field/value pairs
-- Returns {'OK', version}, {'STALE', version} or {'MISSING', 0}.

local cur = read_saga(ARGV[1])
if not cur[1] then
  return {'MISSING', 0}
end
if tonumber(cur[1]) ~= tonumber(ARGV[1]) or cur[2] ~= 'FAILED' then
  return {'STALE', tonumber(cur[1])}
end
return {'OK', transition(2, 18, cur)}
