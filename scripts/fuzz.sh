#!/usr/bin/env bash
# Runs the fuzzing campaign of docs/HARDENING.md: builds the targets in fuzz/ with AFL++
# instrumentation (afl.rs, stable Rust) and fuzzes each for EXECUTIONS executions, one target
# at a time, at the lowest CPU priority. Prints one Markdown table row per target from AFL's
# fuzzer_stats and keeps the findings in fuzz/out/<target>/default/{crashes,hangs}.
#
#   scripts/fuzz.sh [TARGET|all] [EXECUTIONS]    default: all 10000000
#   FUZZ_MAX_SECONDS=900 scripts/fuzz.sh …       also stop each target after that long
#   FUZZ_MAX_LENGTH=4096 scripts/fuzz.sh …       AFL makes no input longer than that (-G)
#   FUZZ_RESUME=1 scripts/fuzz.sh TARGET N       go on from fuzz/out/TARGET up to N in all
#   scripts/fuzz.sh seeds                        rewrite fuzz/corpus/ from fuzz/src/seeds.rs
#   scripts/fuzz.sh replay [TARGET|all]          run every corpus and finding once, no fuzzing
#
# Needs `cargo install cargo-afl` once. The fuzz workspace keeps its own fuzz/target: AFL's
# RUSTFLAGS would otherwise invalidate the main workspace's build cache.
set -euo pipefail

TARGETS=(checkpoint session query proof scrub ingest otlp)
cd "$(dirname "$0")/../fuzz"

what=${1:-all}
executions=${2:-10000000}

nice -n 19 cargo afl build --release --quiet

case "$what" in
seeds)
    rm -rf corpus
    target/release/seeds corpus
    exit 0
    ;;
replay)
    selected=("${2:-all}")
    [[ ${selected[0]} == all ]] && selected=("${TARGETS[@]}")
    for target in "${selected[@]}"; do
        for input in corpus/"$target"/* out/"$target"/default/{crashes,hangs}/id:*; do
            [[ -f $input ]] || continue
            target/release/"$target" <"$input" >/dev/null || echo "FAILS: $target $input"
        done
    done
    exit 0
    ;;
all) selected=("${TARGETS[@]}") ;;
*) selected=("$what") ;;
esac

# No UI (the output is a log), no CPU pinning (two cores shared with builds), and no refusal
# over the machine's core_pattern or frequency governor, which a container cannot change.
export AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1

echo "| target | executions | exec/s | edges found / total | map density | crashes | hangs | run time |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for target in "${selected[@]}"; do
    out=out/$target
    input=corpus/$target
    if [[ -n ${FUZZ_RESUME:-} && -d $out/default ]]; then
        # AFL++ carries the executions and run time of the earlier run over.
        input=-
    else
        rm -rf "$out"
    fi
    mkdir -p out
    # -E stops after about that many executions; -t 1000: an input taking over a second is a hang.
    limits=(-E "$executions")
    [[ -n ${FUZZ_MAX_SECONDS:-} ]] && limits+=(-V "$FUZZ_MAX_SECONDS")
    # Long mixed texts cost the scrubber tens of milliseconds each and stall the campaign.
    [[ -n ${FUZZ_MAX_LENGTH:-} ]] && limits+=(-G "$FUZZ_MAX_LENGTH")
    nice -n 19 cargo afl fuzz -i "$input" -o "$out" "${limits[@]}" -t 1000 \
        target/release/"$target" >>"out/$target.log" 2>&1 || {
        echo "afl-fuzz failed on $target, see fuzz/out/$target.log" >&2
        exit 1
    }
    stats=$out/default/fuzzer_stats
    stat() { awk -F' *: *' -v key="$1" '$1 == key { print $2 }' "$stats"; }
    seconds=$(stat run_time)
    executed=$(stat execs_done)
    echo "| $target | $executed | $((executed / (seconds > 0 ? seconds : 1))) |" \
        "$(stat edges_found) / $(stat total_edges) | $(stat bitmap_cvg) |" \
        "$(stat saved_crashes) | $(stat saved_hangs) | ${seconds} s |"
done
