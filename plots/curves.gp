# curves.gp — one task's learning curves: the dev metric at each evaluation (top) and the
# training loss (bottom, moving average over 1/25 of the run), one line per method, each at
# the learning rate the table chose for it, smallest seed.
#
#   gnuplot -c plots/curves.gp DIR OUT png|svg STEM N TITLE METRIC STEPS
# DIR holds curves_STEM.tsv and loss_STEM.tsv with N blocks (one per method, each titled by its
# first line); STEPS is the x range of both panels. Run by `peftbench plot`.
dir = ARG1; out = ARG2; fmt = ARG3; stem = ARG4; n = int(ARG5)
if (fmt eq "svg") {
    set terminal svg size 1000,760 dynamic enhanced font "Sans,12" background rgb "white"
} else {
    set terminal pngcairo size 1000,760 enhanced font "Sans,11"
}
set output out.".".fmt
set datafile separator "\t"
set border 3
set tics nomirror
set grid xtics ytics lc rgb "#dddddd"
unset key
set xrange [0:int(ARG8)]
cols = "#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f #bcbd22 #17becf"
set multiplot title ARG6 noenhanced
set lmargin at screen 0.09
set rmargin at screen 0.72
set tmargin at screen 0.90
set bmargin at screen 0.55
set format x ""
set ylabel ARG7." on dev (×100)" noenhanced
plot for [i=0:n-1] dir."/curves_".stem.".tsv" index i using 1:2 with linespoints lw 1.5 pt 7 ps 0.6 \
     lc rgb word(cols, i % 10 + 1) dt 1 + i / 10 notitle
set tmargin at screen 0.48
set bmargin at screen 0.09
set format x "%g"
set xlabel "step"
set ylabel "training loss (moving average)"
unset key
plot for [i=0:n-1] dir."/loss_".stem.".tsv" index i using 1:3 with lines lw 1.5 lc rgb word(cols, i % 10 + 1) dt 1 + i / 10 notitle
# the legend: an empty third panel to the right as tall as both, so every method fits in one column
set lmargin at screen 0.75
set rmargin at screen 0.99
set tmargin at screen 0.90
set bmargin at screen 0.09
unset border
unset tics
unset xlabel
unset ylabel
unset grid
set xrange [0:1]
set yrange [0:1]
set key at graph 0, graph 1 left top Left reverse samplen 2 spacing 1.1 box lc rgb "#bbbbbb" noenhanced
plot for [i=0:n-1] dir."/curves_".stem.".tsv" index i using 1:(NaN) with linespoints lw 1.5 pt 7 ps 0.6 \
     lc rgb word(cols, i % 10 + 1) dt 1 + i / 10 title columnheader(1)
unset multiplot
