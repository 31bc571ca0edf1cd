/* commands.h — the one list of subcommands: name, summary, function (one file each in harness/). */
#ifndef PB_COMMANDS_H
#define PB_COMMANDS_H

#include "cli.h"

int pb_cmd_demo(pb_args *a);
int pb_cmd_list(pb_args *a);
int pb_cmd_run(pb_args *a);
int pb_cmd_pretrain(pb_args *a);
int pb_cmd_score(pb_args *a);
int pb_cmd_data(pb_args *a);
int pb_cmd_sweep(pb_args *a);
int pb_cmd_merge(pb_args *a);
int pb_cmd_table(pb_args *a);
int pb_cmd_plot(pb_args *a);
int pb_cmd_survey(pb_args *a);
int pb_cmd_count(pb_args *a);

#define PB_COMMAND_LIST(X)                                                                 \
    X("demo", "train a backbone briefly on the built-in corpus and report what it measured", pb_cmd_demo) \
    X("run", "fine-tune one backbone x method x task cell and print what it measured", pb_cmd_run) \
    X("list", "list backbones, models, methods, tasks", pb_cmd_list) \
    X("pretrain", "pretrain a backbone preset on a corpus and write its checkpoint", pb_cmd_pretrain) \
    X("score", "a checkpoint's loss, bits per byte and perplexity on a text", pb_cmd_score) \
    X("data", "fetch the corpus and task data (data fetch), show the data directory (data dir)", pb_cmd_data) \
    X("sweep", "run a sweep spec's cells into an HDF5 results file (resumable, shardable)", pb_cmd_sweep) \
    X("merge", "combine results files (shards) into one, duplicates detected by key", pb_cmd_merge) \
    X("table", "the survey-style comparison table of a results file (md, tex, csv)", pb_cmd_table) \
    X("plot", "figures of a results file (gnuplot: PNG and SVG with their TSV)", pb_cmd_plot) \
    X("survey", "the survey run: data, default backbone, preset sweep, table and figures", pb_cmd_survey) \
    X("count", "exact parameters of a method on a real foundation model (Hugging Face PEFT's counts)", pb_cmd_count)

#endif
