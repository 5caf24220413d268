#!/usr/bin/env bash
# Seeded bugs: applies each deliberate bug below to a temporary copy of the
# tree and runs the tests there; every bug must make them fail ("killed").
# A bug the tests survive is a hole in the safety net.
#
#   scripts/mutants.sh                  # all mutants, the saga packages' tests
#   PKGS=./... scripts/mutants.sh       # the whole suite (slower)
#   scripts/mutants.sh fence-skipped    # one mutant by name
#
# Each mutant is a literal text replacement that must match exactly once,
# so a mutant that no longer applies (the code moved) fails loudly instead
# of passing as "killed".
set -uo pipefail
cd "$(dirname "$0")/.."
PKGS=${PKGS:-"./saga/ ./handlers/ ./streams/ ./internal/ctl/ ./examples/..."}

# name@@file@@text to find@@replacement; lines of one name are one mutant;
# \n in a text stands for a newline
mutants=(
  "fence-skipped@@saga/lua/prelude.lua@@if version ~= tonumber(expected) then@@if false then"
  "xack-dropped@@saga/lua/hop.lua@@\nredis.call('XACK', KEYS[10], ARGV[1], ARGV[2])\nreturn {'OK', v}@@\nreturn {'OK', v}"
  "refund-twice@@handlers/lua/refund.lua@@if f[2] then@@if false then"
  "release-forgotten@@handlers/services.go@@ws = append(ws, saga.HIncrBy(stockAvailable, it.SKU, it.Quantity), saga.HIncrBy(stockReserved, it.SKU, -it.Quantity))@@ws = append(ws, saga.HIncrBy(stockReserved, it.SKU, -it.Quantity))"
  "barrier-ignored@@saga/lua/effect.lua@@if b[2] then\n    return {'BLOCKED'}@@if false then\n    return {'BLOCKED'}"
  "gateway-barrier-ignored@@handlers/lua/charge.lua@@if f[2] then@@if false then"
  "null-compensation-applied@@saga/lua/hop.lua@@local apply = ARGV[5] == ''@@local apply = true or ARGV[5] == ''"
  "stock-oversold@@saga/lua/prelude.lua@@        failed = ARGV[j + 4]@@        failed = nil"
  "deadline-never-set@@saga/lua/prelude.lua@@    redis.call('ZADD', KEYS[2], deadline, saga_id)@@    -- deadline never set"
  "identity-skipped@@saga/lua/prelude.lua@@if mode ~= cur[3] or rid ~= id or (typ ~= '*' and rtyp ~= typ) then@@if false then"
  "identity-skipped@@saga/fence.go@@if h.id == \"\" || h.id != id || (typ != \"*\" && h.typ != typ) {@@if false && (h.id == \"\" || h.id != id || (typ != \"*\" && h.typ != typ)) {"
  "identity-skipped-in-commit@@saga/lua/prelude.lua@@if mode ~= cur[3] or rid ~= id or (typ ~= '*' and rtyp ~= typ) then@@if false then"
  "identity-skipped-before-effect@@saga/fence.go@@if h.id == \"\" || h.id != id || (typ != \"*\" && h.typ != typ) {@@if false && (h.id == \"\" || h.id != id || (typ != \"*\" && h.typ != typ)) {"
  "late-effect-kept@@saga/hop.go@@if !abandoned(st, k) {@@if true || !abandoned(st, k) {"
  "first-reason-dropped@@saga/patch.go@@c.set(\"first_reason\", c.prior)@@_ = c.prior"
  "refund-overwrites-charge@@saga/patch.go@@c.set(stepField(i, \"compensation_result\"), string(result))@@c.set(stepField(i, \"result\"), string(result))"
  "current-step-moves-back@@saga/patch.go@@return c.set(\"compensating_step\", strconv.Itoa(i))@@return c.set(\"current_step\", strconv.Itoa(i)).set(\"compensating_step\", strconv.Itoa(i))"
)

only=${1:-}
src=$(pwd)
results=()
status=0
names=()
for m in "${mutants[@]}"; do
  n=${m%%@@*}
  [[ " ${names[*]} " == *" $n "* ]] || names+=("$n")
done
for name in "${names[@]}"; do
  [ -n "$only" ] && [ "$only" != "$name" ] && continue
  tmp=$(mktemp -d)
  git ls-files -z | (cd "$src" && xargs -0 cp --parents -t "$tmp")
  applied=1
  files=()
  for m in "${mutants[@]}"; do
    n=${m%%@@*}; rest=${m#*@@}
    file=${rest%%@@*}; rest=${rest#*@@}
    find=${rest%%@@*}; replace=${rest#*@@}
    [ "$n" = "$name" ] || continue
    count=$(FIND="$find" perl -0ne '$f = $ENV{FIND}; $f =~ s/\\n/\n/g; $n = () = /\Q$f\E/g; print $n' "$tmp/$file")
    if [ "$count" != "1" ]; then
      results+=("$name: DID NOT APPLY ($count matches of the text in $file)")
      applied=0
      break
    fi
    FIND="$find" REPL="$replace" perl -0pi -e '$f = $ENV{FIND}; $r = $ENV{REPL}; $f =~ s/\\n/\n/g; $r =~ s/\\n/\n/g; s/\Q$f\E/$r/' "$tmp/$file"
    files+=("$file")
  done
  if [ $applied = 0 ]; then
    status=1
    rm -rf "$tmp"
    continue
  fi
  echo "== $name: ${files[*]}"
  log="$tmp.log"
  # A mutant that does not compile proves nothing about the tests.
  if ! (cd "$tmp" && go vet $PKGS) >"$log" 2>&1; then
    results+=("$name: DOES NOT COMPILE: $(grep -m1 -v '^#' "$log")")
    status=1
    rm -rf "$tmp" "$log"
    continue
  fi
  began=$(date +%s)
  if (cd "$tmp" && go test -count=1 -failfast $PKGS) >"$log" 2>&1; then
    results+=("$name: SURVIVED (the tests passed with the bug) in $(( $(date +%s) - began ))s")
    status=1
  else
    first=$(grep -m1 -E '^\s*--- FAIL' "$log" | sed 's/^ *//')
    results+=("$name: killed by ${first:-a build or test failure} in $(( $(date +%s) - began ))s")
  fi
  rm -rf "$tmp" "$log"
done
echo
printf '%s\n' "${results[@]}"
exit $status
