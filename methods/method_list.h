/* method_list.h — the registry: one line per method file, in the order `peftbench list methods`
 * shows them (by survey category). Adding a method = its file + one line here. */
PB_METHOD(full)
PB_METHOD(head)
PB_METHOD(bitfit)
PB_METHOD(lora)
