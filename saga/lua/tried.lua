-- A choreographed compensation was refused (its operation failed): the
-- step shows the failed try while its message waits, pending, for its next
-- delivery. Fenced like a hop on the message being the one the saga waits
-- for, so a late or foreign copy writes nothing. Only the way back runs it.
--
-- KEYS[1] saga hash
-- ARGV[1] the saga version the message was published at
-- ARGV[2] its identity "<mode>|<type>|<id>"
-- ARGV[3] the step's index
-- ARGV[4] the refusal's reason
-- Returns the step's failed tries so far, or 0 when nothing was written.

local cur = read_saga(ARGV[1])
if fence(cur, ARGV[1], ARGV[2]) then
  return 0
end
local step = 'step.' .. ARGV[3] .. '.'
redis.call('HSET', KEYS[1], step .. 'compensation', 'PENDING', step .. 'error', ARGV[4])
return redis.call('HINCRBY', KEYS[1], step .. 'attempts', 1)
