#!/usr/bin/env bash
# Prints one closing line for a make test run, from what actually ran:
# the package tests' verdicts (go test -v output) and the suites' JUnit
# reports, the host's and each VM kernel's. Usage: ci/summary.sh OUTDIR
set -euo pipefail
out=${1:-out}
pass=$(grep -c '^--- PASS' "$out/unit.txt" || true)
fail=$(grep -c '^--- FAIL' "$out/unit.txt" || true)
skip=$(grep -c '^--- SKIP' "$out/unit.txt" || true)
for f in "$out"/junit.xml "$out"/rootns-junit.xml "$out"/vm/*/*.junit.xml; do
	[ -f "$f" ] || continue
	while read -r line; do
		num() { printf '%s\n' "$line" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
		t=$(num tests); fl=$(num failures); e=$(num errors); d=$(num disabled); s=$(num skipped)
		pass=$((pass + t - fl - e - d - s)); fail=$((fail + fl + e)); skip=$((skip + s))
	done < <(grep -o '<testsuite [^>]*' "$f")
done
echo "tcplab: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
