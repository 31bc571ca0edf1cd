# flops.gp — training FLOPs per token per method, stacked by phase (forward, backward to
# inputs, backward to weights), as counted by the kernels (core/pb_flops.h).
#
#   gnuplot -c plots/flops.gp DIR OUT png|svg TITLE
# DIR holds flops.tsv. Run by `peftbench plot`.
dir = ARG1; out = ARG2; fmt = ARG3
if (fmt eq "svg") {
    set terminal svg size 1000,620 dynamic enhanced font "Sans,12" background rgb "white"
} else {
    set terminal pngcairo size 1000,620 enhanced font "Sans,11"
}
set output out.".".fmt
set datafile separator "\t"
set lmargin at screen 0.10
set rmargin at screen 0.72
set bmargin at screen 0.25
set tmargin at screen 0.90
set style data histograms
set style histogram rowstacked
set style fill solid 0.85 border rgb "#333333"
set boxwidth 0.7
set xtics rotate by 40 right nomirror noenhanced
set ytics nomirror
set format y "%.1s%c"
set border 3
set grid ytics lc rgb "#dddddd"
set yrange [0:*]
set ylabel "training FLOPs per token"
set title ARG4 noenhanced
set key at screen 0.74, screen 0.90 left top Left reverse samplen 2 width 2 box lc rgb "#bbbbbb" noenhanced
cols = "#1f77b4 #ff7f0e #2ca02c"
plot for [i=2:4] dir."/flops.tsv" using i:xtic(1) title columnheader(i) lc rgb word(cols, i - 1)
