-- Trims a stream, but never past an entry that some consumer group still has
-- pending or has not read yet: Redis 7.0 trimming ignores consumer groups and
-- would silently drop such entries (RELIABILITY.md E1, E1c).
--
-- KEYS[1] the stream
-- ARGV[1] the retention cutoff id "<unix ms>-0"; older entries may go
-- Returns the number of entries removed.

local function less(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  ams, bms = tonumber(ams), tonumber(bms)
  if ams ~= bms then
    return ams < bms
  end
  return tonumber(aseq) < tonumber(bseq)
end

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local bound = ARGV[1]
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
for _, g in ipairs(groups) do
  local info = {}
  for i = 1, #g, 2 do
    info[g[i]] = g[i + 1]
  end
  -- Entries after last-delivered-id are unread by this group.
  local keep = info['last-delivered-id']
  if tonumber(info['pending'] or 0) > 0 then
    -- The summary form's second element is the smallest pending id.
    keep = redis.call('XPENDING', KEYS[1], info['name'])[2]
  end
  if type(keep) ~= 'string' or not string.match(keep, '^%d+%-%d+$') then
    -- A reply this script does not understand: trim nothing rather than
    -- guess (a Redis-compatible server may answer differently).
    return 0
  end
  if less(keep, bound) then
    bound = keep
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', bound)
