-- Applies an operation's writes on the saga's partition once, guarded by a
-- field of the saga hash, and acknowledges the consumed entry: the undo of
-- a late effect ("u.<step>": a step's effect made outside the saga's
-- scripts, by a checked step's call or on another slot, landed after the
-- saga gave up on the step) and a step's finalisation ("f.<step>").
--
-- KEYS[1]      saga hash
-- KEYS[2]      the consumed stream (the saga hash when none)
-- KEYS[3..]    keys of the writes
-- ARGV[1]      group
-- ARGV[2]      entry id ('' when none)
-- ARGV[3]      the guard field
-- ARGV[4]      the writes (prelude)
-- Returns 'OK', or 'DONE' when they were applied before (or the saga is
-- gone).

check_writes(4)
local res = 'DONE'
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HSETNX', KEYS[1], ARGV[3], '1') == 1 then
  apply_writes(4)
  res = 'OK'
end
if ARGV[2] ~= '' then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
end
return res
