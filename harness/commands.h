/* commands.h — the one list of subcommands: name, summary, function (one file each in harness/). */
#ifndef PB_COMMANDS_H
#define PB_COMMANDS_H

#include "cli.h"

int pb_cmd_demo(pb_args *a);
int pb_cmd_list(pb_args *a);
int pb_cmd_run(pb_args *a);

#define PB_COMMAND_LIST(X)                                                                 \
    X("demo", "train a backbone briefly on the built-in corpus and report what it measured", pb_cmd_demo) \
    X("run", "fine-tune one backbone x method x task cell and print what it measured", pb_cmd_run) \
    X("list", "list backbones, methods, tasks (and, with a later issue, models)", pb_cmd_list)

#endif
