#!/bin/bash
# scripts/timeline.sh TSV PNG: draws README's chart, retransmissions per
# second by reason, from the file TestStorm writes with -timeline
# (make test-integration writes .build/timeline-KERNEL.tsv).
set -euo pipefail
tsv=$1 png=$2
[ -s "$tsv" ] || { echo "timeline: $tsv is missing or empty: run make test-integration (TestStorm writes it)" >&2; exit 1; }
if ! command -v gnuplot >/dev/null; then
	apt-get install -y -q gnuplot-nox >/dev/null
fi
kernel=$(basename "$tsv" .tsv)
kernel=${kernel#timeline-}
gnuplot <<GP
set terminal pngcairo size 900,420 font "sans,10" noenhanced
set output "$png"
set datafile separator "\t"
set key autotitle columnhead outside right top
set title "trace_tcpretrans: retransmissions per second by reason (TestStorm, Linux $kernel guest)"
set xlabel "seconds since the first event"
set ylabel "events per second"
set style data histograms
set style histogram rowstacked
set style fill solid 0.85 noborder
set boxwidth 0.9
set grid ytics
set xtics 5
plot for [i=2:8] "$tsv" using i:xtic(int(column(1)) % 5 == 0 ? stringcolumn(1) : "") , \
     "$tsv" using 0:9 with linespoints lw 2 pt 7 ps 0.5 lc rgb "black" title "LOSS events (probes fired)"
GP
echo "wrote $png"
