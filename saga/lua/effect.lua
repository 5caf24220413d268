-- An operation's writes on a slot other than its saga's (state that many
-- sagas share, e.g. stock), applied once per step and phase of a saga
-- behind a barrier (dtm's): an execution applies once, and never after its
-- step was compensated; a compensation undoes only an execution that took
-- effect (a null compensation writes nothing, and blocks a late
-- execution); a finalisation applies once, after an execution that took
-- effect and was not compensated. The saga's transition comes after.
--
-- KEYS[1]      the saga's barrier in this slot (a hash). It never expires
--              while an execution it records is live (applied, neither
--              compensated nor finalised): a compensation must find it,
--              however long the saga runs or waits FAILED for an operator;
--              then it expires after ARGV[3].
-- KEYS[2..]    keys of the writes
-- ARGV[1]      the step's name
-- ARGV[2]      phase: execute, compensate or finalize
-- ARGV[3]      the barrier's TTL, seconds
-- ARGV[4]      the writes (prelude)
-- Returns {'OK'}; {'FAIL', reason}: a take found too little, nothing
-- written (an execution's failure is recorded); {'BLOCKED'}: compensated
-- before, nothing written; {'NULL'}: nothing to undo or make final;
-- {'DONE', outcome}: applied before.

local e, c, f = ARGV[1] .. '.execute', ARGV[1] .. '.compensate', ARGV[1] .. '.finalize'
local b = redis.call('HMGET', KEYS[1], e, c, f)
local failed = check_writes(4)
local function done(field, value)
  redis.call('HSET', KEYS[1], field, value)
  local all = redis.call('HGETALL', KEYS[1])
  local live = {}
  for i = 1, #all, 2 do
    local step, phase = string.match(all[i], '^(.*)%.(%a+)$')
    if phase == 'execute' and all[i + 1] == 'ok' then
      live[step] = (live[step] or 0) + 1
    elseif phase == 'compensate' or phase == 'finalize' then
      live[step] = (live[step] or 0) - 1
    end
  end
  for _, n in pairs(live) do
    if n > 0 then
      redis.call('PERSIST', KEYS[1])
      return
    end
  end
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
if ARGV[2] == 'execute' then
  if b[2] then
    return {'BLOCKED'}
  end
  if b[1] then
    return {'DONE', b[1]}
  end
  if failed then
    done(e, 'fail|' .. failed)
    return {'FAIL', failed}
  end
  apply_writes(4)
  done(e, 'ok')
  return {'OK'}
end
if ARGV[2] == 'compensate' then
  if b[2] then
    return {'DONE', b[2]}
  end
  if b[1] ~= 'ok' then
    done(c, 'null')
    return {'NULL'}
  end
  if failed then
    return {'FAIL', failed}
  end
  apply_writes(4)
  done(c, 'done')
  return {'OK'}
end
if b[3] then
  return {'DONE', b[3]}
end
if b[1] ~= 'ok' or b[2] or failed then
  done(f, 'null')
  return {'NULL'}
end
apply_writes(4)
done(f, 'done')
return {'OK'}
