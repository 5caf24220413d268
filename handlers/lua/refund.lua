-- The fake gateway's refund (the compensation of chargePayment), under the
-- idempotency key of the saga's refund. Without a charge it only leaves a
-- tombstone that blocks a late charge.
--
-- KEYS[1] this saga's ledger (hash)
-- KEYS[2] gateway totals (hash)
-- ARGV[1] ledger TTL, seconds
-- Returns {decision, refunded cents}: refunded, null, or the first decision.

local f = redis.call('HMGET', KEYS[1], 'charge', 'refund', 'charged_cents', 'refunded_cents')
if f[2] then
  return {f[2], f[4] or '0'}
end
if f[1] == 'charged' then
  redis.call('HSET', KEYS[1], 'refund', 'refunded', 'refunded_cents', f[3])
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  redis.call('HINCRBY', KEYS[2], 'refunds', 1)
  redis.call('HINCRBY', KEYS[2], 'refunded_cents', f[3])
  return {'refunded', f[3]}
end
redis.call('HSET', KEYS[1], 'refund', 'null', 'refunded_cents', 0)
redis.call('EXPIRE', KEYS[1], ARGV[1])
return {'null', '0'}
