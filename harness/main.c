/* main.c — the peftbench command: dispatches subcommands (see harness/cli.h). */
#include "harness/cli.h"

int main(int argc, char **argv) { return pb_cli_main(argc, argv); }
