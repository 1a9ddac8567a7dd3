#!/usr/bin/env bash
# Runs every Go fuzz target in the module briefly: FUZZTIME each (default
# 3s), one target at a time (go test -fuzz takes one target and one package).
# Targets are discovered, so new ones are picked up without editing this
# file. A failure leaves the minimised input in the package's
# testdata/fuzz/<Target>/ and makes the script exit non-zero.
#
#   .ci/fuzz.sh                 # every target, 3 s each
#   FUZZTIME=1m .ci/fuzz.sh     # longer
#   .ci/fuzz.sh FuzzFrame       # only targets matching a regexp
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-3s}
filter=${1:-.}
failed=0
while IFS= read -r line; do
	file=${line%%:*}
	name=$(grep -oE 'func Fuzz[A-Za-z0-9_]*' <<<"$line" | cut -d' ' -f2)
	[[ $name =~ $filter ]] || continue
	pkg=./$(dirname "$file")
	echo "== $name ($pkg, $fuzztime)"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
		echo "!! $name failed"
		failed=1
	fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | sed 's#^\./##' | sort)
exit $failed
