-- Reserves every item of one saga's order, all or nothing. The reservation
-- record is the step's barrier: a redelivery returns the recorded decision,
-- and a reservation whose release came first (a null compensation left a
-- tombstone) is refused.
--
-- KEYS[1] available units per SKU (hash)
-- KEYS[2] reserved units per SKU (hash)
-- KEYS[3] this saga's reservation record (hash)
-- ARGV[1] TTL of a record whose outcome is final, seconds
-- ARGV[2..] sku, quantity pairs
-- Returns {decision, detail}: reserved, insufficient (detail: the SKU),
-- released (blocked by an earlier release) or committed.

local st = redis.call('HMGET', KEYS[3], 'status', 'detail')
if st[1] then
  return {st[1], st[2] or ''}
end
for i = 2, #ARGV, 2 do
  local avail = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if avail < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[3], 'status', 'insufficient', 'detail', ARGV[i])
    redis.call('EXPIRE', KEYS[3], ARGV[1])
    return {'insufficient', ARGV[i]}
  end
end
local items = {}
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], -tonumber(ARGV[i + 1]))
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
  items[#items + 1] = 'i.' .. ARGV[i]
  items[#items + 1] = ARGV[i + 1]
end
-- A live reservation does not expire: its release or its consumption sets
-- the TTL, so a compensation never finds it gone.
redis.call('HSET', KEYS[3], 'status', 'reserved', unpack(items))
return {'reserved', ''}
