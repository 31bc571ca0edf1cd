/* method_list.h — the registry: one line per method file, in the order `peftbench list methods`
 * shows them (grouped by the survey's categories). Adding a method = its file + one line here. */
/* selective */
PB_METHOD(full)
PB_METHOD(head)
PB_METHOD(bitfit)
PB_METHOD(ln_tuning)
PB_METHOD(partial)
PB_METHOD(sparse)
/* additive */
PB_METHOD(seq_bn)
PB_METHOD(double_seq_bn)
PB_METHOD(par_bn)
PB_METHOD(ia3)
/* prompt */
PB_METHOD(prompt_tuning)
PB_METHOD(prefix_tuning)
PB_METHOD(p_tuning)
/* reparameterization */
PB_METHOD(lora)
PB_METHOD(dora)
PB_METHOD(vera)
PB_METHOD(loha)
/* hybrid */
PB_METHOD(mam)
PB_METHOD(unipelt)
