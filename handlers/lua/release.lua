-- Releases one saga's reservation (the compensation of reserveStock). When
-- nothing was reserved it only leaves a tombstone, so a reservation arriving
-- later is refused (null compensation, no hanging).
--
-- KEYS[1] available units per SKU (hash)
-- KEYS[2] reserved units per SKU (hash)
-- KEYS[3] this saga's reservation record (hash)
-- ARGV[1] record TTL, seconds
-- Returns released (stock given back), null (nothing was reserved),
-- or the earlier outcome of a repeated call.

local st = redis.call('HGET', KEYS[3], 'status')
if st == 'reserved' then
  local rec = redis.call('HGETALL', KEYS[3])
  for i = 1, #rec, 2 do
    local sku = string.match(rec[i], '^i%.(.+)$')
    if sku then
      redis.call('HINCRBY', KEYS[1], sku, rec[i + 1])
      redis.call('HINCRBY', KEYS[2], sku, -tonumber(rec[i + 1]))
    end
  end
  redis.call('HSET', KEYS[3], 'status', 'released')
  redis.call('EXPIRE', KEYS[3], ARGV[1])
  return 'released'
end
if not st then
  redis.call('HSET', KEYS[3], 'status', 'released', 'detail', 'null compensation')
  redis.call('EXPIRE', KEYS[3], ARGV[1])
  return 'null'
end
return st
