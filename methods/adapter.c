/* adapter.c — adapter files (see adapter.h; layout in methods/ADAPTER.md). */
#include "pb_fs.h"
#include "pb_h5.h"
#include "adapter.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb_gitinfo.h"

static void quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static int put_str(hid_t f, const char *name, const char *v) { return H5LTset_attribute_string(f, "/", name, v); }
static int put_int(hid_t f, const char *name, int v) { return H5LTset_attribute_int(f, "/", name, &v, 1); }

static int put_tensor(hid_t g, const pb_tensor *t) {
    hsize_t dims[2] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1]};
    return H5LTmake_dataset_float(g, t->name, t->ndim, dims, t->data);
}

pb_status pb_adapter_save(const char *path, const pb_peft *p, const char *spec) {
    quiet();
    if (!p->model) return pb_errorf(PB_EINVAL, "%s: only a runnable model's adapter can be saved", path);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return pb_errorf(PB_EINVAL, "path too long: %s", path);
    hid_t f = pb_h5_create_mem(H5P_DEFAULT); /* written to tmp by us at the end (core/pb_h5.h) */
    if (f < 0) return pb_errorf(PB_EHDF5, "%s: HDF5 cannot create a file in memory", path);
    const pb_model_desc *d = p->d;
    int bad = put_str(f, "magic", PB_ADAPTER_MAGIC) < 0 || put_int(f, "format_version", PB_ADAPTER_VERSION) < 0 ||
              put_str(f, "method", spec) < 0 || put_str(f, "head", p->head == PB_HEAD_CLS ? "cls" : "lm") < 0 ||
              put_int(f, "n_labels", p->n_labels) < 0 || put_str(f, "backbone", d->name) < 0 ||
              put_int(f, "n_layer", d->n_layer) < 0 || put_int(f, "d_model", d->d_model) < 0 ||
              put_int(f, "d_ff", d->d_ff) < 0 || put_int(f, "n_head", d->n_head) < 0 ||
              put_int(f, "vocab", d->vocab) < 0 || put_int(f, "max_seq", d->max_seq) < 0 ||
              put_str(f, "git_commit", PB_GIT_COMMIT) < 0;
    hid_t ga = H5Gcreate2(f, "added", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t gb = H5Gcreate2(f, "base", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad |= ga < 0 || gb < 0;
    for (int i = 0; !bad && i < p->n_params; i++) bad |= put_tensor(ga, &p->params[i]) < 0;
    for (int i = 0; !bad && i < p->n_base; i++)
        if (p->unfrozen[i]) bad |= put_tensor(gb, &p->model->tensors[i]) < 0;
    if (ga >= 0) H5Gclose(ga);
    if (gb >= 0) H5Gclose(gb);
    if (bad) {
        H5Fclose(f);
        return pb_errorf(PB_EHDF5, "%s: building the adapter file failed (HDF5 error)", path);
    }
    pb_status st = pb_h5_close_to_file(f, tmp);
    if (!st) st = pb_fsync_path(tmp, 0);
    if (st) {
        remove(tmp);
        return st;
    }
    return pb_rename_durable(tmp, path);
}

/* 1 if the root attribute `name` exists and holds one element of class cls (strings: fixed
 * length below cap). H5LT's readers copy the whole attribute, whatever its shape, so a file
 * with an array or a long string where one value belongs would overflow the destination
 * (found by tests/fuzz/fuzz_adapter.c). */
static int attr_one(hid_t f, const char *name, H5T_class_t cls, size_t cap) {
    if (H5Aexists(f, name) <= 0) return 0;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t sp = H5Aget_space(a), ty = H5Aget_type(a);
    int ok = sp >= 0 && ty >= 0 && H5Sget_simple_extent_npoints(sp) == 1 && H5Tget_class(ty) == cls &&
             (cls != H5T_STRING || (H5Tis_variable_str(ty) == 0 && H5Tget_size(ty) < cap));
    if (ty >= 0) H5Tclose(ty);
    if (sp >= 0) H5Sclose(sp);
    H5Aclose(a);
    return ok;
}

static pb_status get_int(hid_t f, const char *path, const char *name, int *out) {
    if (!attr_one(f, name, H5T_INTEGER, 0) || H5LTget_attribute_int(f, "/", name, out) < 0)
        return pb_errorf(PB_EFORMAT, "%s: attribute '%s' missing or not one integer", path, name);
    return PB_OK;
}

static hid_t open_checked(const char *path) {
    quiet();
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        pb_errorf(PB_EIO, "%s: cannot open adapter file", path);
        return -1;
    }
    fclose(probe);
    if (H5Fis_hdf5(path) <= 0) {
        pb_errorf(PB_EFORMAT, "%s: not an HDF5 file (expected an adapter written by `peftbench run --save-adapter`)", path);
        return -1;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        pb_errorf(PB_EFORMAT, "%s: HDF5 cannot open it (truncated or damaged?)", path);
        return -1;
    }
    char magic[64] = "";
    int version = 0;
    if (!attr_one(f, "magic", H5T_STRING, sizeof magic) || H5LTget_attribute_string(f, "/", "magic", magic) < 0 ||
        strcmp(magic, PB_ADAPTER_MAGIC) != 0) {
        H5Fclose(f);
        pb_errorf(PB_EFORMAT, "%s: not a peftbench adapter (magic attribute is not '%s')", path, PB_ADAPTER_MAGIC);
        return -1;
    }
    if (!attr_one(f, "format_version", H5T_INTEGER, 0) || H5LTget_attribute_int(f, "/", "format_version", &version) < 0 ||
        version != PB_ADAPTER_VERSION) {
        H5Fclose(f);
        pb_errorf(PB_EFORMAT, "%s: adapter format version %d, this build reads version %d", path, version,
                  PB_ADAPTER_VERSION);
        return -1;
    }
    return f;
}

static pb_status get_str(hid_t f, const char *path, const char *name, char *out, size_t cap) {
    if (!attr_one(f, name, H5T_STRING, cap) || H5LTget_attribute_string(f, "/", name, out) < 0)
        return pb_errorf(PB_EFORMAT, "%s: attribute '%s' missing or not a string", path, name);
    return PB_OK;
}

pb_status pb_adapter_read_spec(const char *path, char *spec, size_t cap, int *is_cls, int *n_labels) {
    hid_t f = open_checked(path);
    if (f < 0) return PB_EFORMAT;
    char head[16];
    pb_status st = get_str(f, path, "method", spec, cap);
    if (!st) st = get_str(f, path, "head", head, sizeof head);
    if (!st) st = get_int(f, path, "n_labels", n_labels);
    if (!st) *is_cls = !strcmp(head, "cls");
    H5Fclose(f);
    return st;
}

static pb_status read_tensor(hid_t g, const char *path, const char *group, pb_tensor *t) {
    if (H5LTfind_dataset(g, t->name) <= 0)
        return pb_errorf(PB_EFORMAT, "%s: /%s/%s is missing", path, group, t->name);
    int rank;
    if (H5LTget_dataset_ndims(g, t->name, &rank) < 0 || rank != t->ndim)
        return pb_errorf(PB_EFORMAT, "%s: /%s/%s has rank %d, expected %d", path, group, t->name, rank, t->ndim);
    hsize_t dims[2] = {0, 0};
    H5T_class_t cls;
    size_t size;
    if (H5LTget_dataset_info(g, t->name, dims, &cls, &size) < 0 || cls != H5T_FLOAT || size != 4)
        return pb_errorf(PB_EFORMAT, "%s: /%s/%s is not float32", path, group, t->name);
    if ((int)dims[0] != t->shape[0] || (t->ndim == 2 && (int)dims[1] != t->shape[1]))
        return pb_errorf(PB_EFORMAT, "%s: /%s/%s has shape (%llu, %llu), the model needs (%d, %d)", path, group, t->name,
                         (unsigned long long)dims[0], (unsigned long long)dims[1], t->shape[0], t->shape[1]);
    if (H5LTread_dataset_float(g, t->name, t->data) < 0)
        return pb_errorf(PB_EHDF5, "%s: reading /%s/%s failed (damaged file?)", path, group, t->name);
    return PB_OK;
}

pb_status pb_adapter_load(const char *path, pb_model *m, pb_peft *p) {
    char spec[1024], head[16];
    hid_t f = open_checked(path);
    if (f < 0) return PB_EFORMAT;
    pb_status st = get_str(f, path, "method", spec, sizeof spec);
    if (!st) st = get_str(f, path, "head", head, sizeof head);
    int v[6];
    const char *keys[6] = {"n_layer", "d_model", "d_ff", "n_head", "vocab", "n_labels"};
    int want[6] = {m->d.n_layer, m->d.d_model, m->d.d_ff, m->d.n_head, m->d.vocab, m->n_labels};
    for (int i = 0; !st && i < 6; i++) {
        st = get_int(f, path, keys[i], &v[i]);
        if (!st && v[i] != want[i])
            st = pb_errorf(PB_EINVAL, "%s: the adapter was trained with %s=%d, this model has %s=%d", path, keys[i], v[i],
                           keys[i], want[i]);
    }
    if (!st && !strcmp(head, "cls") != (m->head == PB_HEAD_CLS))
        st = pb_errorf(PB_EINVAL, "%s: the adapter is for a %s head, the model has a %s head", path, head,
                       m->head == PB_HEAD_CLS ? "classification" : "language-model");
    if (!st) st = pb_peft_create(p, spec, NULL, m->head, m->n_labels, m, 0);
    if (st) {
        H5Fclose(f);
        return st;
    }
    hid_t ga = H5Gopen2(f, "added", H5P_DEFAULT), gb = H5Gopen2(f, "base", H5P_DEFAULT);
    if (ga < 0 || gb < 0) st = pb_errorf(PB_EFORMAT, "%s: groups /added and /base are required", path);
    for (int i = 0; !st && i < p->n_params; i++) st = read_tensor(ga, path, "added", &p->params[i]);
    for (int i = 0; !st && i < p->n_base; i++)
        if (p->unfrozen[i]) st = read_tensor(gb, path, "base", &m->tensors[i]);
    if (ga >= 0) H5Gclose(ga);
    if (gb >= 0) H5Gclose(gb);
    H5Fclose(f);
    if (st) pb_peft_free(p);
    return st;
}
