-- Publishes one entry and acknowledges the consumed one, in one step, and
-- optionally raises an alert. Used to move an entry that belongs to no live
-- saga (undecodable, deleted while pending, a stale copy) to the dead-letter
-- stream, and for a service's reply to an orchestrator command.
--
-- KEYS[1] consumed stream
-- KEYS[2] stream to publish to (dead letters, replies)
-- KEYS[3] alerts stream
-- ARGV[1] group
-- ARGV[2] consumed entry id
-- ARGV[3] number of alert field/value pairs (0 = no alert), then the pairs,
--         then the published entry's pairs
-- Returns the published entry's id.

local n = tonumber(ARGV[3])
local alert, dead = {}, {}
for i = 4, 3 + 2 * n do
  alert[#alert + 1] = ARGV[i]
end
for i = 4 + 2 * n, #ARGV do
  dead[#dead + 1] = ARGV[i]
end
local id = redis.call('XADD', KEYS[2], '*', unpack(dead))
if n > 0 then
  redis.call('XADD', KEYS[3], '*', unpack(alert))
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return id
