-- Deletes the consumers of one group that hold nothing and have been idle
-- for long: those of workers that died or scaled away. XGROUP DELCONSUMER
-- drops a consumer's pending entries for good, so the check (pending = 0)
-- and the delete are one script: a consumer that reads in between cannot
-- lose what it read. A live worker deleted while idle is recreated by its
-- next read.
--
-- KEYS[1] stream
-- ARGV[1] group
-- ARGV[2] minimum idle time, ms
-- ARGV[3] the calling consumer, never deleted
-- Returns the number of consumers deleted.
local consumers = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
local min_idle = tonumber(ARGV[2])
local deleted = 0
for _, c in ipairs(consumers) do
  local f = {}
  for i = 1, #c, 2 do
    f[c[i]] = c[i + 1]
  end
  if f.name ~= ARGV[3] and tonumber(f.pending) == 0 and tonumber(f.idle) >= min_idle then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f.name)
    deleted = deleted + 1
  end
end
return deleted
