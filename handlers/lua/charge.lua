-- The fake payment gateway's charge, under the idempotency key of the saga's
-- chargePayment step. A repeated call returns the first decision; a charge
-- whose refund came first (null compensation) is refused.
--
-- KEYS[1] this saga's ledger (hash)
-- KEYS[2] gateway totals (hash: charges, charged_cents, refunds, refunded_cents)
-- ARGV[1] amount, cents
-- ARGV[2] limit, cents
-- ARGV[3] '1' when the gateway declines this charge at random
-- ARGV[4] payment id to use if charged
-- ARGV[5] TTL of a ledger whose outcome is final, seconds
-- Returns {decision, payment id or reason}: charged, declined, blocked.

local f = redis.call('HMGET', KEYS[1], 'charge', 'refund', 'payment_id', 'reason')
if f[1] then
  if f[1] == 'charged' then
    return {'charged', f[3]}
  end
  return {f[1], f[4] or ''}
end
if f[2] then
  redis.call('HSET', KEYS[1], 'charge', 'blocked', 'reason', 'refunded before the charge arrived')
  return {'blocked', 'refunded before the charge arrived'}
end
local amount = tonumber(ARGV[1])
local reason
if amount > tonumber(ARGV[2]) then
  reason = 'amount over the gateway limit'
elseif ARGV[3] == '1' then
  reason = 'declined by the gateway'
end
if reason then
  redis.call('HSET', KEYS[1], 'charge', 'declined', 'reason', reason)
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return {'declined', reason}
end
-- A live charge does not expire: its refund or the order's completion
-- (settle) sets the TTL, so a compensation never finds it gone.
redis.call('HSET', KEYS[1], 'charge', 'charged', 'charged_cents', amount, 'payment_id', ARGV[4])
redis.call('HINCRBY', KEYS[2], 'charges', 1)
redis.call('HINCRBY', KEYS[2], 'charged_cents', amount)
return {'charged', ARGV[4]}
