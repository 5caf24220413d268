-- Moves an entry that belongs to no live saga (undecodable, deleted while
-- pending, or a stale copy) to the dead-letter stream and acknowledges it,
-- in one step; an entry deleted while pending also raises an alert.
--
-- KEYS[1] consumed stream
-- KEYS[2] dead-letter stream
-- KEYS[3] alerts stream
-- ARGV[1] group
-- ARGV[2] consumed entry id
-- ARGV[3] number of alert field/value pairs (0 = no alert), then the pairs,
--         then the dead-letter entry's pairs
-- Returns the dead-letter entry id.

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
