#!/usr/bin/env bash
# Renders a run's report.html to a PNG with headless Chromium (Debian's `chromium` package), the
# picture docs/training.md shows.  usage: tools/report_screenshot.sh REPORT.html OUT.png [WIDTH HEIGHT]
set -euo pipefail
report=$1 out=$2 width=${3:-1280} height=${4:-3200}
[ -f "$report" ] || { echo "no such report: $report" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "headless Chromium not found (Debian: apt-get install chromium)" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
  --window-size="$width,$height" --screenshot="$(realpath -m "$out")" "file://$(realpath "$report")" 2>/dev/null
echo "wrote $out (${width}x${height})"
