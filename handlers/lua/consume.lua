-- Turns a completed saga's reservation into shipped stock: the units leave
-- "reserved" for good. Repeated calls change nothing.
--
-- KEYS[1] reserved units per SKU (hash)
-- KEYS[2] this saga's reservation record (hash)
-- ARGV[1] record TTL, seconds
-- Returns committed, or the record's status when it was not reserved.

local st = redis.call('HGET', KEYS[2], 'status')
if st ~= 'reserved' then
  return st or 'none'
end
local rec = redis.call('HGETALL', KEYS[2])
for i = 1, #rec, 2 do
  local sku = string.match(rec[i], '^i%.(.+)$')
  if sku then
    redis.call('HINCRBY', KEYS[1], sku, -tonumber(rec[i + 1]))
  end
end
redis.call('HSET', KEYS[2], 'status', 'committed')
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 'committed'
