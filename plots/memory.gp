# memory.gp — peak memory per method, stacked by category (frozen weights, trainable
# parameters, gradients, optimizer state, saved activations, workspace, other). Each segment is
# that category's own peak during training; the peaks need not coincide, so a bar can exceed
# the peak of the total.
#
#   gnuplot -c plots/memory.gp DIR OUT png|svg TITLE
# DIR holds memory.tsv (method, then MiB per category). Run by `peftbench plot`.
dir = ARG1; out = ARG2; fmt = ARG3
if (fmt eq "svg") {
    set terminal svg size 1000,620 dynamic enhanced font "Sans,12" background rgb "white"
} else {
    set terminal pngcairo size 1000,620 enhanced font "Sans,11"
}
set output out.".".fmt
set datafile separator "\t"
set lmargin at screen 0.09
set rmargin at screen 0.78
set bmargin at screen 0.25
set tmargin at screen 0.90
set style data histograms
set style histogram rowstacked
set style fill solid 0.85 border rgb "#333333"
set boxwidth 0.7
set xtics rotate by 40 right nomirror noenhanced
set ytics nomirror
set border 3
set grid ytics lc rgb "#dddddd"
set yrange [0:*]
set ylabel "peak memory by category (MiB)"
set title ARG4 noenhanced
set key at screen 0.80, screen 0.90 left top Left reverse samplen 2 width 2 box lc rgb "#bbbbbb" noenhanced
cols = "#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #7f7f7f"
plot for [i=2:8] dir."/memory.tsv" using i:xtic(1) title columnheader(i) lc rgb word(cols, i - 1)
