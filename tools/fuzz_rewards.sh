#!/bin/sh
# Pushes COUNT (default 100,000) seeded adversarial completions through every registered reward
# (RewardsTests.RegistryFuzzTests) and prints the summary: count, crashes, slowest input per reward.
# The test asserts no crash and every value finite or nil (in-process rewards within -1...1); speed
# is reported, never asserted. Results of a run are kept in docs/reliability.md, "Rewards".
#
#   tools/fuzz_rewards.sh [COUNT]
set -eu
cd "$(dirname "$0")/.."
count="${1:-100000}"
report="${VLMRL_FUZZ_REPORT:-${TMPDIR:-/tmp}/vlmrl-reward-fuzz-$$.txt}"
VLMRL_ONLY=RewardsTests swift build --build-tests --scratch-path .build-rewards -j 2
start=$(date +%s)
VLMRL_FUZZ_COUNT="$count" VLMRL_FUZZ_REPORT="$report" VLMRL_ONLY=RewardsTests \
  swift test --skip-build --scratch-path .build-rewards --filter 'RewardsTests.RegistryFuzzTests'
echo "wall time: $(( $(date +%s) - start )) s"
cat "$report"
