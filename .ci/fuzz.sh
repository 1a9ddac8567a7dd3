#!/usr/bin/env bash
# Runs every Go fuzz target in the module briefly: FUZZTIME each (default
# 20000 executions), one target at a time (go test -fuzz takes one target and
# one package). The default is a count, not a duration: with a duration,
# Go's fuzz coordinator can report "context deadline exceeded" and fail a
# target that found nothing, when the deadline races a busy worker
# (golang/go#75804, fixed for Go 1.27). A count has no deadline to race.
# Targets are discovered, so new ones are picked up without editing this
# file. A failure leaves the minimised input in the package's
# testdata/fuzz/<Target>/ and makes the script exit non-zero.
#
#   .ci/fuzz.sh                 # every target, 20000 executions each
#   FUZZTIME=1000000x .ci/fuzz.sh  # longer
#   .ci/fuzz.sh FuzzFrame       # only targets matching a regexp
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-20000x}
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
