-- Publishes a dead letter's original entry on its stream again and removes
-- the dead letter, in one step (validated first: nothing is written when
-- the dead letter does not exist).
--
-- KEYS[1] dead-letter stream
-- KEYS[2] the entry's source stream
-- ARGV[1] dead-letter entry id
-- ARGV[2..] the original field/value pairs
-- Returns the new entry's id.

if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then
  return redis.error_reply('no such dead letter')
end
local fields = {}
for i = 2, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
