/* export.c — TSV files for the figures (see export.h). Tab-separated, one header line, text
 * fields unquoted (the scripts set `datafile separator "\t"`). */
#include "export.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static FILE *open_out(const char *dir, const char *name, char *path, size_t cap, pb_status *st) {
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) *st = pb_errorf(PB_EIO, "%s: cannot write: %s", path, strerror(errno));
    return f;
}

static pb_status close_out(FILE *f, const char *path) {
    if (ferror(f) | (fclose(f) != 0)) return pb_errorf(PB_EIO, "%s: write failed (disk full?)", path);
    return PB_OK;
}

/* Tabs and newlines cannot appear in a TSV field. */
static void clean(char *dst, size_t cap, const char *s) {
    snprintf(dst, cap, "%s", s);
    for (char *p = dst; *p; p++)
        if (*p == '\t' || *p == '\n' || *p == '\r') *p = ' ';
}

/* ---- label placement for the scatter plot ------------------------------------------------------ */

typedef struct {
    double x0, y0, x1, y1; /* pixels, y up */
} box;

static double overlap(const box *a, const box *b) {
    double w = fmin(a->x1, b->x1) - fmax(a->x0, b->x0), h = fmin(a->y1, b->y1) - fmax(a->y0, b->y0);
    return w > 0 && h > 0 ? w * h : 0;
}

#define CHAR_W 7.2  /* pixels per character of the 10-point label font (pngcairo), a little generous */
#define CHAR_H 15.0

typedef struct {
    double lo, hi, ymin, ymax; /* log10 x range, y range */
} frame;

static double px_of(const frame *fr, double x) {
    return PB_PLOT_L * PB_PLOT_W + (log10(x) - fr->lo) / (fr->hi - fr->lo) * (PB_PLOT_R - PB_PLOT_L) * PB_PLOT_W;
}
static double py_of(const frame *fr, double y) {
    return PB_PLOT_B * PB_PLOT_H + (y - fr->ymin) / (fr->ymax - fr->ymin) * (PB_PLOT_T - PB_PLOT_B) * PB_PLOT_H;
}
static double x_of(const frame *fr, double px) {
    return pow(10.0, fr->lo + (px - PB_PLOT_L * PB_PLOT_W) / ((PB_PLOT_R - PB_PLOT_L) * PB_PLOT_W) * (fr->hi - fr->lo));
}
static double y_of(const frame *fr, double py) {
    return fr->ymin + (py - PB_PLOT_B * PB_PLOT_H) / ((PB_PLOT_T - PB_PLOT_B) * PB_PLOT_H) * (fr->ymax - fr->ymin);
}

/* Places n labels (text widths w[i] pixels) next to points (px, py), in the order given by
 * order[]; writes the label boxes. Candidates around each point are tried in turn; the first
 * that stays in the plot area and touches no placed label, no marker and no obstacle point
 * (ox, oy: samples of the Pareto line) wins, else the one that overlaps least. */
static void place_labels(int n, const double *px, const double *py, const double *w, const int *order,
                         const double *ox, const double *oy, int n_obst, box *out) {
    const double g = 11, h = CHAR_H;
    box area = {PB_PLOT_L * PB_PLOT_W, PB_PLOT_B * PB_PLOT_H, PB_PLOT_R * PB_PLOT_W, PB_PLOT_T * PB_PLOT_H};
    int *placed = calloc((size_t)n, sizeof *placed);
    for (int oi = 0; oi < n; oi++) {
        int i = order[oi];
        /* candidate left-bottom corners */
        double cx[16] = {px[i] + g,        px[i] - g - w[i], px[i] - w[i] / 2, px[i] - w[i] / 2,
                         px[i] + g * 0.7,  px[i] + g * 0.7,  px[i] - g * 0.7 - w[i], px[i] - g * 0.7 - w[i],
                         px[i] + g,        px[i] + g,        px[i] - g - w[i], px[i] - g - w[i],
                         px[i] - w[i] / 2, px[i] - w[i] / 2, px[i] + g * 2, px[i] - g * 2 - w[i]};
        double cy[16] = {py[i] - h / 2,     py[i] - h / 2,     py[i] + g,         py[i] - g - h,
                         py[i] + g * 0.5,   py[i] - g * 0.5 - h, py[i] + g * 0.5, py[i] - g * 0.5 - h,
                         py[i] + h,         py[i] - 2 * h,     py[i] + h,         py[i] - 2 * h,
                         py[i] + g + h,     py[i] - g - 2 * h, py[i] - h / 2,     py[i] - h / 2};
        double best_cost = INFINITY;
        box best = {cx[0], cy[0], cx[0] + w[i], cy[0] + h};
        for (int c = 0; c < 16; c++) {
            box b = {cx[c], cy[c], cx[c] + w[i], cy[c] + h};
            double cost = 0;
            if (b.x0 < area.x0 || b.x1 > area.x1 || b.y0 < area.y0 || b.y1 > area.y1) cost += 1e6;
            for (int j = 0; j < n; j++) {
                box m = {px[j] - 8, py[j] - 8, px[j] + 8, py[j] + 8};
                cost += overlap(&b, &m) * 4;
                if (placed[j]) {
                    box pad = {out[j].x0 - 3, out[j].y0 - 2, out[j].x1 + 3, out[j].y1 + 2};
                    cost += overlap(&b, &pad) * 10;
                }
            }
            for (int j = 0; j < n_obst; j++) { /* points along the Pareto line */
                box o = {ox[j] - 2, oy[j] - 2, ox[j] + 2, oy[j] + 2};
                cost += overlap(&b, &o) * 2;
            }
            cost += c * 0.01; /* prefer earlier candidates */
            if (cost < best_cost) best_cost = cost, best = b;
            if (cost < 1) break;
        }
        out[i] = best;
        placed[i] = 1;
    }
    free(placed);
}

/* ---- files --------------------------------------------------------------------------------------- */

/* The curve a figure draws for row i, column k: the chosen rate's cell with the smallest seed. */
static const pb_res_row *curve_row(const pb_res *r, const pb_table *t, int i, int k) {
    const pb_res_row *best = NULL;
    for (size_t j = 0; j < r->n; j++) {
        const pb_res_row *w = &r->rows[j];
        if (pb_table_chosen_cell(t, i, k, w) && (!best || w->seed < best->seed)) best = w;
    }
    return best;
}

static void make_stem(char *dst, size_t cap, const char *name) {
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < cap; p++) {
        char c = *p;
        dst[k++] = (char)(((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ? c : (c >= 'A' && c <= 'Z') ? c + 32 : '_');
    }
    dst[k] = '\0';
}

pb_status pb_export_tsv(const pb_res *r, const pb_table *t, const char *dir, pb_export_info *info) {
    memset(info, 0, sizeof *info);
    info->n_methods = t->n_rows;
    info->n_tasks = t->n_tasks;
    char path[2048], name[256], lab[PB_RES_NAME];
    pb_status st = PB_OK;
    FILE *f;

    /* --- accuracy vs % trainable, with the Pareto front --- */
    int n = t->n_rows;
    double *px = calloc((size_t)n + 1, sizeof *px), *py = calloc((size_t)n + 1, sizeof *py);
    double *tw = calloc((size_t)n + 1, sizeof *tw);
    int *idx = calloc((size_t)n + 1, sizeof *idx), *order = calloc((size_t)n + 1, sizeof *order);
    int *pareto = calloc((size_t)n + 1, sizeof *pareto);
    box *lb = calloc((size_t)n + 1, sizeof *lb);
    if (!px || !py || !tw || !idx || !order || !pareto || !lb) {
        st = pb_errorf(PB_ENOMEM, "out of memory");
        goto out;
    }
    int m = 0;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < n; i++) {
        const pb_table_row *x = &t->rows[i];
        if (!isfinite(x->avg) || !(x->pct_trainable > 0)) continue;
        idx[m++] = i;
        xlo = fmin(xlo, x->pct_trainable), xhi = fmax(xhi, x->pct_trainable);
        ylo = fmin(ylo, x->avg), yhi = fmax(yhi, x->avg);
    }
    info->n_points = m;
    frame fr = {0, 2, 0, 100};
    if (m) {
        fr.lo = log10(xlo) - 0.3;
        fr.hi = log10(xhi) + 0.3;
        double span = fmax(yhi - ylo, 2.0);
        fr.ymin = ylo - 0.15 * span;
        fr.ymax = yhi + 0.15 * span;
    }
    info->xmin = pow(10.0, fr.lo), info->xmax = pow(10.0, fr.hi), info->ymin = fr.ymin, info->ymax = fr.ymax;
    for (int a = 0; a < m; a++) {
        const pb_table_row *x = &t->rows[idx[a]];
        int dominated = 0;
        for (int b = 0; b < m && !dominated; b++) {
            const pb_table_row *y = &t->rows[idx[b]];
            if (a == b) continue;
            dominated = y->pct_trainable <= x->pct_trainable && y->avg >= x->avg &&
                        (y->pct_trainable < x->pct_trainable || y->avg > x->avg);
        }
        pareto[a] = !dominated;
        px[a] = px_of(&fr, x->pct_trainable);
        py[a] = py_of(&fr, x->avg);
        tw[a] = (double)strlen(x->label) * CHAR_W;
    }
    int k = 0;
    for (int a = 0; a < m; a++)
        if (pareto[a]) order[k++] = a;
    for (int a = 0; a < m; a++)
        if (!pareto[a]) order[k++] = a;
    /* the Pareto line, sampled every 3 pixels, is an obstacle too */
    double *ox = NULL, *oy = NULL;
    int n_obst = 0, cap_obst = 0, prev = -1;
    for (int step = 0; step < m; step++) { /* front points by increasing x */
        int pick = -1;
        for (int a = 0; a < m; a++)
            if (pareto[a] && (prev < 0 || px[a] > px[prev] || (px[a] == px[prev] && py[a] > py[prev])) &&
                (pick < 0 || px[a] < px[pick] || (px[a] == px[pick] && py[a] < py[pick])))
                pick = a;
        if (pick < 0) break;
        if (prev >= 0) {
            double len = hypot(px[pick] - px[prev], py[pick] - py[prev]);
            int ns = (int)(len / 3) + 1;
            if (n_obst + ns + 1 > cap_obst) {
                cap_obst = 2 * (n_obst + ns + 1);
                double *a1 = realloc(ox, sizeof *ox * (size_t)cap_obst), *a2 = realloc(oy, sizeof *oy * (size_t)cap_obst);
                if (a1) ox = a1;
                if (a2) oy = a2;
                if (!a1 || !a2) break;
            }
            for (int q = 0; q <= ns; q++) {
                ox[n_obst] = px[prev] + (px[pick] - px[prev]) * q / ns;
                oy[n_obst++] = py[prev] + (py[pick] - py[prev]) * q / ns;
            }
        }
        prev = pick;
    }
    place_labels(m, px, py, tw, order, ox, oy, n_obst, lb);
    free(ox);
    free(oy);
    if (!(f = open_out(dir, "accuracy_vs_params.tsv", path, sizeof path, &st))) goto out;
    fprintf(f, "method\tcategory_index\tcategory\tpct_trainable\tavg_test\tpareto\tlabel_x\tlabel_y\t"
               "leader_x\tleader_y\n");
    for (int a = 0; a < m; a++) {
        const pb_table_row *x = &t->rows[idx[a]];
        clean(lab, sizeof lab, x->label);
        /* a label placed away from its marker gets a leader line to the nearest point of its box */
        double ax = fmin(fmax(px[a], lb[a].x0), lb[a].x1), ay = fmin(fmax(py[a], lb[a].y0), lb[a].y1);
        int far = hypot(ax - px[a], ay - py[a]) > 16;
        fprintf(f, "%s\t%d\t%s\t%.9g\t%.9g\t%d\t%.9g\t%.9g\t", lab, x->category_index, x->category,
                x->pct_trainable, x->avg, pareto[a], x_of(&fr, lb[a].x0), y_of(&fr, (lb[a].y0 + lb[a].y1) / 2));
        if (far) fprintf(f, "%.9g\t%.9g\n", x_of(&fr, ax), y_of(&fr, ay));
        else fprintf(f, "NaN\tNaN\n");
    }
    if ((st = close_out(f, path))) goto out;
    if (!(f = open_out(dir, "pareto.tsv", path, sizeof path, &st))) goto out;
    fprintf(f, "method\tpct_trainable\tavg_test\n");
    /* the front, by increasing % trainable (then increasing accuracy) */
    int done[256] = {0};
    for (int step = 0; step < m && m <= 256; step++) {
        int pick = -1;
        for (int a = 0; a < m; a++) {
            if (!pareto[a] || done[a]) continue;
            const pb_table_row *x = &t->rows[idx[a]];
            if (pick < 0 || x->pct_trainable < t->rows[idx[pick]].pct_trainable ||
                (x->pct_trainable == t->rows[idx[pick]].pct_trainable && x->avg < t->rows[idx[pick]].avg))
                pick = a;
        }
        if (pick < 0) break;
        done[pick] = 1;
        clean(lab, sizeof lab, t->rows[idx[pick]].label);
        fprintf(f, "%s\t%.9g\t%.9g\n", lab, t->rows[idx[pick]].pct_trainable, t->rows[idx[pick]].avg);
    }
    if ((st = close_out(f, path))) goto out;

    /* --- memory and FLOPs per method --- */
    if (!(f = open_out(dir, "memory.tsv", path, sizeof path, &st))) goto out;
    fprintf(f, "method");
    for (int c = 0; c < PB_MEM_NCAT; c++) fprintf(f, "\t%s", pb_mem_cat_key((pb_mem_cat)c));
    fprintf(f, "\n");
    for (int i = 0; i < n; i++) {
        const pb_table_row *x = &t->rows[i];
        if (!x->n_ok) continue;
        clean(lab, sizeof lab, x->label);
        fprintf(f, "%s", lab);
        for (int c = 0; c < PB_MEM_NCAT; c++) fprintf(f, "\t%.6g", x->mem_cat[c] / 1048576.0);
        fprintf(f, "\n");
    }
    if ((st = close_out(f, path))) goto out;
    if (!(f = open_out(dir, "flops.tsv", path, sizeof path, &st))) goto out;
    fprintf(f, "method\tforward\tbackward (inputs)\tbackward (weights)\n");
    for (int i = 0; i < n; i++) {
        const pb_table_row *x = &t->rows[i];
        if (!x->n_ok) continue;
        clean(lab, sizeof lab, x->label);
        fprintf(f, "%s\t%.9g\t%.9g\t%.9g\n", lab, x->flops_phase[0], x->flops_phase[1], x->flops_phase[2]);
    }
    if ((st = close_out(f, path))) goto out;

    /* --- curves per task: each method at its chosen lr, smallest seed --- */
    snprintf(info->metric_label, sizeof info->metric_label, "average test metric (x100)");
    for (int kk = 0; kk < t->n_tasks; kk++) {
        make_stem(info->stem[kk], sizeof info->stem[kk], t->task[kk]);
        for (int j = 0; j < kk; j++)
            if (!strcmp(info->stem[j], info->stem[kk]))
                snprintf(info->stem[kk] + strlen(info->stem[kk]), sizeof info->stem[kk] - strlen(info->stem[kk]),
                         "_%d", kk);
        snprintf(name, sizeof name, "curves_%s.tsv", info->stem[kk]);
        FILE *fc = open_out(dir, name, path, sizeof path, &st);
        if (!fc) goto out;
        char path2[2048];
        snprintf(name, sizeof name, "loss_%s.tsv", info->stem[kk]);
        FILE *fl = open_out(dir, name, path2, sizeof path2, &st);
        if (!fl) {
            fclose(fc);
            goto out;
        }
        int blocks = 0;
        for (int i = 0; i < n; i++) {
            const pb_table_row *x = &t->rows[i];
            const pb_table_cell *c = &x->cell[kk];
            if (!isfinite(c->mean)) continue;
            const pb_res_row *w = curve_row(r, t, i, kk);
            if (!w || !w->n_evals) continue;
            clean(lab, sizeof lab, x->label);
            if (blocks) fprintf(fc, "\n\n"), fprintf(fl, "\n\n");
            fprintf(fc, "%s\tdev\ttrain_loss\n", lab);
            for (int e = 0; e < w->n_evals; e++)
                fprintf(fc, "%d\t%.6g\t%.6g\n", w->eval_step[e], (double)w->eval_dev[e] * t->scale[kk],
                        (double)w->eval_train_loss[e]);
            fprintf(fl, "%s\tloss\tmoving_average\n", lab);
            if (w->n_loss > info->max_step[kk]) info->max_step[kk] = w->n_loss;
            if (w->eval_step[w->n_evals - 1] > info->max_step[kk]) info->max_step[kk] = w->eval_step[w->n_evals - 1];
            int win = w->n_loss / 25 > 1 ? w->n_loss / 25 : 1;
            double acc = 0;
            for (int s = 0; s < w->n_loss; s++) {
                acc += w->loss[s];
                if (s >= win) acc -= w->loss[s - win];
                int cnt = s + 1 < win ? s + 1 : win;
                fprintf(fl, "%d\t%.6g\t%.6g\n", s + 1, (double)w->loss[s], acc / cnt);
            }
            blocks++;
        }
        info->n_curves[kk] = blocks;
        pb_status s1 = close_out(fc, path), s2 = close_out(fl, path2);
        if ((st = s1 ? s1 : s2)) goto out;
    }
out:
    free(px), free(py), free(tw), free(idx), free(order), free(pareto), free(lb);
    return st;
}
