/* adapter.h — saving and loading what a PEFT method trained, as one HDF5 file.
 *
 * Layout (methods/ADAPTER.md): root attributes (magic "peftbench-adapter", format_version,
 * method spec, head, n_labels, the backbone's shape), /added/<name> for every tensor the method
 * added (trainable and frozen buffers, so data-chosen state such as sparse indices comes back),
 * /base/<name> for every base tensor the method trained in place (biases, norms, the task
 * head). Loading re-attaches the method to a model with the same shape and reads the tensors
 * back, bit-exact.
 */
#ifndef PB_ADAPTER_H
#define PB_ADAPTER_H

#include "peft.h"

#define PB_ADAPTER_MAGIC "peftbench-adapter"
#define PB_ADAPTER_VERSION 1

/* Writes p (attached to a runnable model) to path atomically (path.tmp, then rename). */
pb_status pb_adapter_save(const char *path, const pb_peft *p, const char *spec);
/* Reads the file's method spec and head (for callers that must build the model first). */
pb_status pb_adapter_read_spec(const char *path, char *spec, size_t cap, int *is_cls, int *n_labels);
/* Attaches the saved method to model m (same shape as when saved) and loads its tensors.
 * Errors name the file and what does not match. */
pb_status pb_adapter_load(const char *path, pb_model *m, pb_peft *p);

#endif
