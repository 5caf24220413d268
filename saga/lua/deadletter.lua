-- An entry that cannot be handled goes to the dead-letter stream and is
-- acknowledged. When it is the message its saga waits for, the saga gives
-- up on the step in the same script (the transition); otherwise only the
-- dead letter is written.
--
-- KEYS[1..9]   the transition's keys (prelude)
-- KEYS[10]     the consumed stream
-- KEYS[11]     the dead-letter stream
-- ARGV[1]      group
-- ARGV[2]      entry id
-- ARGV[3]      the saga version of the entry ('' when no transition)
-- ARGV[4]      its identity "<mode>|<type>|<id>"
-- ARGV[5..20]  the transition (prelude, b = 5)
-- ARGV[21]     the number of the dead letter's field/value pairs, then the
--              pairs, then the saga hash's field/value pairs
-- Returns {'OK', version} when the saga gave up on the step, {'DEAD', 0}
-- when only the dead letter was written.

local n = tonumber(ARGV[21])
local res = {'DEAD', 0}
if ARGV[3] ~= '' then
  local cur = read_saga(ARGV[3])
  if not fence(cur, ARGV[3], ARGV[4]) then
    res = {'OK', transition(5, 22 + 2 * n, cur)}
  end
end
redis.call('XADD', KEYS[11], '*', unpack(ARGV, 22, 21 + 2 * n))
redis.call('XACK', KEYS[10], ARGV[1], ARGV[2])
return res
