-- Moves an entry that belongs to no saga (undecodable, or deleted while
-- pending) to the dead-letter stream and acknowledges it, in one step.
--
-- KEYS[1] consumed stream
-- KEYS[2] dead-letter stream
-- ARGV[1] group
-- ARGV[2] consumed entry id
-- ARGV[3..] dead-letter entry field/value pairs
-- Returns the dead-letter entry id.

local fields = {}
for i = 3, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return id
