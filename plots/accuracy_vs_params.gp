# accuracy_vs_params.gp — average test metric against % trainable parameters (log scale), one
# marker per survey category, the Pareto front (fewer parameters, higher accuracy) as a dashed
# line, every method labelled. Label positions come from the exporter (results/export.c), which
# places them without overlaps inside the plot area fixed below (keep the two in step).
#
#   gnuplot -c plots/accuracy_vs_params.gp DIR OUT png|svg XMIN XMAX YMIN YMAX TITLE "CATS"
# DIR holds accuracy_vs_params.tsv (labels placed away from their marker have a leader line,
# columns 9-10, NaN otherwise) and pareto.tsv; OUT is the output path without extension;
# CATS lists the category indices present ("0 3"). Run by `peftbench plot`.
dir = ARG1; out = ARG2; fmt = ARG3
if (fmt eq "svg") {
    set terminal svg size 1000,620 dynamic enhanced font "Sans,12" background rgb "white"
} else {
    set terminal pngcairo size 1000,620 enhanced font "Sans,11"
}
set output out.".".fmt
set datafile separator "\t"
set lmargin at screen 0.09
set rmargin at screen 0.70
set bmargin at screen 0.12
set tmargin at screen 0.90
set logscale x 10
set xrange [ARG4:ARG5]
set yrange [ARG6:ARG7]
set format x "%g"
set xlabel "trainable parameters (% of all, log scale)"
set ylabel "average test metric (×100)"
set title ARG8 noenhanced
set grid xtics ytics mxtics lc rgb "#dddddd"
set border 3
set tics nomirror
set key at screen 0.73, screen 0.90 left top Left reverse samplen 2 spacing 1.4 box lc rgb "#bbbbbb" noenhanced
cats = "selective additive prompt reparameterization hybrid other"
pts = "7 5 9 11 13 6"
cols = "#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #7f7f7f"
plot dir."/pareto.tsv" using 2:3 with lines dt 2 lw 2 lc rgb "#555555" title "Pareto front", \
     dir."/accuracy_vs_params.tsv" using 4:5:($9 - $4):($10 - $5) with vectors nohead lw 0.8 lc rgb "#999999" notitle, \
     for [c in ARG9] dir."/accuracy_vs_params.tsv" using ($2 == c ? $4 : NaN):5 with points \
         pt int(word(pts, c + 1)) ps 1.7 lc rgb word(cols, c + 1) title word(cats, c + 1), \
     dir."/accuracy_vs_params.tsv" using 7:8:1 with labels left font ",10" noenhanced notitle
