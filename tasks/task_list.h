/* tasks/task_list.h — the one list of task families (X-macro; no header guard on purpose).
 *
 * One line per family: PB_TASK_FAMILY(symbol), where `symbol` is the `const pb_task_family`
 * defined in that family's file. tasks/task.c includes this list twice: once to declare the
 * symbols, once to build the table, so the linker keeps every family. Spec names must be claimed
 * by exactly one family (a test checks). Order is the order of `peftbench list tasks`.
 */
PB_TASK_FAMILY(pb_family_synthetic) /* tasks/synthetic.c: sentiment, topic, reverse, brackets */
PB_TASK_FAMILY(pb_family_dataset)   /* tasks/datasets.c:  spam, names_gender, cmudict_g2p, ... */
PB_TASK_FAMILY(pb_family_csv)       /* tasks/csvtask.c:   csv:DIR, csv:train=F,dev=F,test=F */
PB_TASK_FAMILY(pb_family_glue)      /* tasks/glue.c:      glue:sst2, glue:mrpc, ... */
