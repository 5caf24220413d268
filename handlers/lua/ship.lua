-- Creates one saga's shipment, once. A repeated call returns the first
-- decision.
--
-- KEYS[1] this saga's shipment record (hash)
-- KEYS[2] shipping totals (hash: shipments)
-- ARGV[1] units in the order
-- ARGV[2] maximum units per shipment
-- ARGV[3] '1' when this shipment fails at random
-- ARGV[4] shipment id to use if created
-- ARGV[5] record TTL, seconds
-- Returns {decision, shipment id or reason}: created or failed.

local f = redis.call('HMGET', KEYS[1], 'status', 'shipment_id', 'reason')
if f[1] then
  if f[1] == 'created' then
    return {'created', f[2]}
  end
  return {f[1], f[3] or ''}
end
local reason
if tonumber(ARGV[1]) > tonumber(ARGV[2]) then
  reason = 'too many units for one shipment'
elseif ARGV[3] == '1' then
  reason = 'carrier refused the shipment'
end
if reason then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'reason', reason)
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return {'failed', reason}
end
-- A created shipment expires when its order completes (see Shipping.close).
redis.call('HSET', KEYS[1], 'status', 'created', 'shipment_id', ARGV[4], 'units', ARGV[1])
redis.call('HINCRBY', KEYS[2], 'shipments', 1)
return {'created', ARGV[4]}
