-- A fake external system (a hotel's booking API, a card processor): each
-- call is idempotent under the caller's key, and a cancellation that comes
-- before the booking blocks it for good.
--
-- KEYS[1] the system's bookings (hash: key → booked, refused, cancelled or
--         blocked)
-- KEYS[2] what it refuses (set: hotels without rooms, travellers whose
--         card declines)
-- KEYS[3] its counters (hash: booked, cancelled)
-- ARGV[1] 'book' or 'cancel'
-- ARGV[2] the caller's idempotency key
-- ARGV[3] what is booked (a hotel, a traveller)
-- Returns the booking's state.

local cur = redis.call('HGET', KEYS[1], ARGV[2])
if ARGV[1] == 'book' then
  if cur then
    return cur
  end
  if redis.call('SISMEMBER', KEYS[2], ARGV[3]) == 1 then
    redis.call('HSET', KEYS[1], ARGV[2], 'refused')
    return 'refused'
  end
  redis.call('HSET', KEYS[1], ARGV[2], 'booked')
  redis.call('HINCRBY', KEYS[3], 'booked', 1)
  return 'booked'
end
if cur == 'booked' then
  redis.call('HSET', KEYS[1], ARGV[2], 'cancelled')
  redis.call('HINCRBY', KEYS[3], 'cancelled', 1)
  return 'cancelled'
end
if not cur then
  redis.call('HSET', KEYS[1], ARGV[2], 'blocked')
  return 'blocked'
end
return cur
