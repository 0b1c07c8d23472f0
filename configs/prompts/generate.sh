#!/usr/bin/env bash
# Generates the default prompt set from prompts.txt: one <stem>.wav per line, 8 kHz mono 16-bit
# PCM, leading and trailing silence trimmed (with 5/10 ms fades so the cut does not click),
# levelled to the usual level of telephony prompts: -18 dBFS RMS, but never a peak above
# -3 dBFS (so sentences, whose pauses lower the RMS, end at -3 dBFS peak and about -20 to
# -22 dBFS RMS, near -18 dBFS active speech level; single words end at -18 dBFS RMS). Reproducible: fixed voice, speed and pitch, no dither, so a
# rerun with the same espeak-ng and sox writes the same bytes; a file is only replaced when
# its bytes change. Needs espeak-ng and sox (`apt-get install -y espeak-ng sox`); holdless
# itself only reads the committed WAVs.
#
# Usage: configs/prompts/generate.sh [output-dir]   (default: this script's folder)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here}"
list="$here/prompts.txt"

VOICE=en-us   # espeak-ng voice
SPEED=150     # words a minute
PITCH=45      # 0-99
PEAK_DB=-3    # highest peak level, dBFS
RMS_DB=-18    # RMS level aimed at, dBFS (lowered when the peak would pass PEAK_DB)

for tool in espeak-ng sox; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "generate.sh: $tool is missing; install it with: apt-get install -y espeak-ng sox" >&2
        exit 1
    fi
done

mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

count=0
changed=0
while IFS='|' read -r stem text || [ -n "$stem" ]; do
    case "$stem" in '' | '#'*) continue ;; esac
    if [ -z "${text:-}" ]; then
        echo "generate.sh: line for '$stem' has no text" >&2
        exit 1
    fi
    raw="$work/$stem.raw.wav"
    trimmed="$work/$stem.trim.wav"
    wav="$work/$stem.wav"
    espeak-ng -v "$VOICE" -s "$SPEED" -p "$PITCH" -w "$raw" -- "$text"
    # -D: no dither (dither is random noise, which would make every run differ).
    # silence/fade/reverse twice: trim the start, reverse, trim the (former) end, reverse back.
    # Float output for the intermediate file so the level change below is the only rounding.
    sox -D "$raw" -t wav -e floating-point -b 32 -c 1 "$trimmed" \
        rate -v 8000 \
        silence 1 0.01 -50d fade q 0.005 reverse \
        silence 1 0.01 -50d fade q 0.01 reverse
    gain="$(sox "$trimmed" -n stats 2>&1 | awk -v pk="$PEAK_DB" -v rms="$RMS_DB" '
        /^Pk lev dB/ { p = $4 } /^RMS lev dB/ { r = $4 }
        END { g = rms - r; if (p + g > pk) g = pk - p; printf "%.2f", g }')"
    sox -D "$trimmed" -t wav -e signed-integer -b 16 "$wav" gain "$gain"
    if ! cmp -s "$wav" "$out/$stem.wav"; then
        mv "$wav" "$out/$stem.wav"
        changed=$((changed + 1))
    fi
    count=$((count + 1))
done <"$list"

echo "generate.sh: $count prompts, $changed written to $out"
