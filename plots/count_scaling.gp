# count_scaling.gp — a quantity against model size, one line per method, from
# `peftbench count --plot DIR` (docs/COUNT.md): trainable parameters (count_params.tsv) and
# training memory (count_memory.tsv).
#
#   gnuplot -c plots/count_scaling.gp DIR OUT png|svg NMETHODS TITLE TSV YLABEL
# DIR/TSV: model, base params, then one column per method (header = the method spec; empty where
# the method does not apply to the model).
dir = ARG1; out = ARG2; fmt = ARG3; n = int(ARG4); tsv = ARG6
if (fmt eq "svg") {
    set terminal svg size 1000,640 dynamic enhanced font "Sans,12" background rgb "white"
} else {
    set terminal pngcairo size 1000,640 enhanced font "Sans,11"
}
set output out.".".fmt
set datafile separator "\t"
set datafile missing ""
set lmargin at screen 0.10
set rmargin at screen 0.70
set bmargin at screen 0.12
set tmargin at screen 0.90
set logscale xy 10
set format x "10^{%L}"
set format y "10^{%L}"
set xlabel "model parameters (base)"
set ylabel ARG7
set grid xtics ytics mxtics mytics lc rgb "#e4e4e4", lc rgb "#f2f2f2"
set border 3
set xtics nomirror
set ytics nomirror
set title ARG5 noenhanced
set key at screen 0.72, screen 0.90 left top Left reverse samplen 2 box lc rgb "#bbbbbb" noenhanced
plot for [i=3:n+2] dir."/".tsv using 2:i with linespoints pt (i % 7) + 1 ps 1.1 lw 1.5 title columnheader(i)
