#!/usr/bin/env bash
# ab.sh compares two builds of uxp in one run: the bench binary is built
# from each git revision, and the two run alternately (rep 1 of A, rep 1
# of B, rep 2 of A, ...), so drift in the machine's load falls on both.
# It prints, per scenario and metric, the median of A, the median of B
# and B/A.
#
#	cd bench && ./ab.sh REV_A REV_B [bench flags...]
#	cd bench && ./ab.sh 8d93bd8 HEAD -scenarios bulk,rr,scale -systems uxp -reps 3
#
# REV_B may be WORKTREE for the files as they are now (uncommitted
# changes included). -reps N (default 3) is the number of alternations;
# -bench-from REV (or WORKTREE) builds both binaries from that revision's
# bench/ directory, each against its own revision's library, to run a
# scenario that REV_A's bench does not have yet (the game scenario
# against a main from before it); every other flag goes to both binaries
# as it is. Results stay in $AB_DIR (default a new temporary directory):
# A-1/, B-1/, ... each with its results.json, and ab.md with the table.
set -euo pipefail

if [ $# -lt 2 ]; then
	sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
fi
revA=$1 revB=$2
shift 2
reps=3
benchFrom=
args=()
while [ $# -gt 0 ]; do
	case $1 in
	-reps) reps=$2; shift 2 ;;
	-reps=*) reps=${1#-reps=}; shift ;;
	-bench-from) benchFrom=$2; shift 2 ;;
	-bench-from=*) benchFrom=${1#-bench-from=}; shift ;;
	*) args+=("$1"); shift ;;
	esac
done

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
dir=${AB_DIR:-$(mktemp -d /tmp/uxp-ab.XXXXXX)}
mkdir -p "$dir"
trees=()
cleanup() {
	for t in "${trees[@]}"; do git -C "$root" worktree remove --force "$t" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

# build REV NAME: the bench binary of REV into $dir/NAME.
build() {
	local rev=$1 name=$2 src
	if [ "$rev" = WORKTREE ]; then
		src=$root
	else
		src=$dir/src-$name
		rm -rf "$src"
		git -C "$root" worktree add --detach "$src" "$rev" >/dev/null
		trees+=("$src")
	fi
	local bench=$src/bench note= modflag=
	if [ -n "$benchFrom" ]; then
		# A copy of the chosen bench/ whose replace directive points at
		# this revision's library.
		bench=$dir/bench-$name
		rm -rf "$bench"
		mkdir -p "$bench"
		if [ "$benchFrom" = WORKTREE ]; then
			cp -r "$root/bench/." "$bench"
		else
			git -C "$root" archive "$benchFrom" bench | tar -x -C "$bench" --strip-components=1
		fi
		(cd "$bench" && go mod edit -replace "github.com/uxp-go/uxp=$src")
		note=", bench/ from $benchFrom"
		modflag=-mod=mod # the copy's go.sum may lack this library's dependencies
	fi
	(cd "$bench" && go build $modflag -o "$dir/$name" .)
	echo "$name = $rev ($(git -C "$src" rev-parse --short HEAD))$note" >>"$dir/revs.txt"
}
: >"$dir/revs.txt"
build "$revA" A
build "$revB" B

for i in $(seq 1 "$reps"); do
	for n in A B; do
		echo "== rep $i of $reps: $n" >&2
		mkdir -p "$dir/$n-$i"
		(cd "$dir" && "./$n" -reps 1 -out "$dir/$n-$i" "${args[@]}" >"$dir/$n-$i/log.txt" 2>&1) ||
			{ echo "ab.sh: $n rep $i failed, see $dir/$n-$i/log.txt" >&2; exit 1; }
	done
done

python3 - "$dir" "$reps" <<'EOF'
import json, statistics, sys
d, reps = sys.argv[1], int(sys.argv[2])
vals = {}  # (scenario, system, metric) -> {"A": [...], "B": [...]}
for n in "AB":
    for i in range(1, reps + 1):
        res = json.load(open(f"{d}/{n}-{i}/results.json"))
        for c in res["cases"]:
            for m, xs in c.get("samples", {}).items():
                key = (c["scenario"] + (" " + c["variant"] if c.get("variant") else ""), c["system"], m)
                vals.setdefault(key, {"A": [], "B": []})[n].extend(x for x in xs if x is not None)
out = [open(f"{d}/revs.txt").read().strip(), "",
       "| scenario | system | metric | A median | B median | B/A |",
       "|---|---|---|---|---|---|"]
for (scen, sys_, m), ab in sorted(vals.items()):
    if not ab["A"] or not ab["B"]:
        continue
    a, b = statistics.median(ab["A"]), statistics.median(ab["B"])
    ratio = f"{b / a:.3f}" if a else "-"
    out.append(f"| {scen} | {sys_} | {m} | {a:.4g} | {b:.4g} | {ratio} |")
text = "\n".join(out) + "\n"
open(f"{d}/ab.md", "w").write(text)
print(text)
print(f"results in {d}")
EOF
