-- Cancels one saga's shipment (the compensation of createShipment). When
-- nothing was shipped it leaves a tombstone, so a shipment arriving later
-- is refused (null compensation, no hanging).
--
-- KEYS[1] this saga's shipment record (hash)
-- KEYS[2] shipping totals (hash: shipments, cancellations)
-- ARGV[1] record TTL, seconds
-- Returns cancelled (a shipment was cancelled), null (there was none), or
-- the earlier outcome of a repeated call.

local st = redis.call('HGET', KEYS[1], 'status')
if st == 'created' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled')
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  redis.call('HINCRBY', KEYS[2], 'cancellations', 1)
  return 'cancelled'
end
if not st then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'reason', 'null compensation')
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  return 'null'
end
return st
