/* h5mutate.c — see h5mutate.h. Not a fuzz target (its name does not start with fuzz_). */
#include "h5mutate.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_OBJ 256
#define MAX_ATTR 512

typedef struct {
    char obj[MAX_OBJ][256];   /* object paths ("/" first) */
    int is_dset[MAX_OBJ];
    int n_obj;
    int attr_obj[MAX_ATTR];   /* owner index */
    char attr[MAX_ATTR][64];
    int n_attr;
} inventory;

static herr_t visit(hid_t root, const char *name, const H5O_info_t *info, void *ud) {
    (void)root;
    inventory *v = ud;
    if (v->n_obj >= MAX_OBJ) return 1;
    int i = v->n_obj++;
    snprintf(v->obj[i], sizeof v->obj[i], "/%s", strcmp(name, ".") ? name : "");
    v->is_dset[i] = info->type == H5O_TYPE_DATASET;
    return 0;
}

static herr_t attr_cb(hid_t loc, const char *name, const H5A_info_t *ai, void *ud) {
    (void)loc, (void)ai;
    inventory *v = ud;
    if (v->n_attr >= MAX_ATTR) return 1;
    snprintf(v->attr[v->n_attr], sizeof v->attr[0], "%s", name);
    v->attr_obj[v->n_attr] = v->n_obj - 1; /* set by the caller loop below */
    v->n_attr++;
    return 0;
}

static void take_inventory(hid_t f, inventory *v) {
    memset(v, 0, sizeof *v);
    H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, visit, v, H5O_INFO_BASIC);
    int n_obj = v->n_obj;
    for (int i = 0; i < n_obj; i++) {
        hid_t o = H5Oopen(f, v->obj[i], H5P_DEFAULT);
        if (o < 0) continue;
        int first = v->n_attr;
        H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, NULL, attr_cb, v);
        for (int a = first; a < v->n_attr; a++) v->attr_obj[a] = i;
        H5Oclose(o);
    }
}

static int pick_dset(const inventory *v, uint32_t k) {
    int n = 0;
    for (int i = 0; i < v->n_obj; i++) n += v->is_dset[i];
    if (!n) return -1;
    k %= (uint32_t)n;
    for (int i = 0; i < v->n_obj; i++)
        if (v->is_dset[i] && k-- == 0) return i;
    return -1;
}

/* A datatype chosen by the fuzzer. */
static hid_t pick_type(uint8_t t, size_t strsize) {
    switch (t % 6) {
    case 0: return H5Tcopy(H5T_STD_I64LE);
    case 1: return H5Tcopy(H5T_IEEE_F64LE);
    case 2: return H5Tcopy(H5T_IEEE_F32LE);
    case 3: return H5Tcopy(H5T_STD_I32LE);
    case 4: return H5Tcopy(H5T_STD_U8LE);
    default: {
        hid_t s = H5Tcopy(H5T_C_S1);
        H5Tset_size(s, strsize ? strsize : 1);
        return s;
    }
    }
}

/* Replaces attribute (owner, name) by one of a fuzzed type, rank and value. */
static void set_attr(hid_t f, const char *owner, const char *name, pbf_in *in) {
    hid_t o = H5Oopen(f, owner, H5P_DEFAULT);
    if (o < 0) return;
    if (H5Aexists(o, name) > 0) H5Adelete(o, name);
    uint8_t t = pbf_u8(in), shape = pbf_u8(in);
    size_t got;
    const uint8_t *bytes = pbf_bytes(in, 1 + pbf_u8(in) % 40, &got);
    hid_t type = pick_type(t, got);
    hsize_t dims[1] = {1 + shape % 4};
    hid_t sp = shape & 0x80 ? H5Screate_simple(1, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(o, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        size_t need = H5Tget_size(type) * (shape & 0x80 ? dims[0] : 1);
        unsigned char *buf = calloc(1, need + 1);
        memcpy(buf, bytes, got < need ? got : need);
        H5Awrite(a, type, buf);
        free(buf);
        H5Aclose(a);
    }
    H5Sclose(sp);
    H5Tclose(type);
    H5Oclose(o);
}

/* Re-creates dataset path with a fuzzed type, rank and dims (data from the input, zero-filled). */
static void replace_dset(hid_t f, const char *path, pbf_in *in, int keep_type) {
    hid_t old = H5Dopen2(f, path, H5P_DEFAULT);
    if (old < 0) return;
    hid_t type = keep_type ? H5Dget_type(old) : pick_type(pbf_u8(in), 1 + pbf_u8(in) % 32);
    hid_t osp = H5Dget_space(old);
    int rank = H5Sget_simple_extent_ndims(osp);
    hsize_t dims[4] = {0};
    if (rank > 0 && rank <= 4) H5Sget_simple_extent_dims(osp, dims, NULL);
    H5Sclose(osp);
    H5Dclose(old);
    uint8_t r = pbf_u8(in);
    int nrank = r & 0x80 ? (r % 4) : (rank < 0 || rank > 4 ? 1 : rank);
    hsize_t total = 1;
    for (int i = 0; i < nrank; i++) {
        uint8_t d = pbf_u8(in);
        if (d & 0x80) dims[i] = dims[i] + (hsize_t)(d & 7) - 4; /* near the old size */
        else dims[i] = d % 64;
        if ((int64_t)dims[i] < 0) dims[i] = 0;
        total *= dims[i];
    }
    if (total > 1 << 20) { H5Tclose(type); return; }
    H5Ldelete(f, path, H5P_DEFAULT);
    hid_t sp = nrank ? H5Screate_simple(nrank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(f, path, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0) {
        size_t need = H5Tget_size(type) * (size_t)(nrank ? total : 1), got;
        unsigned char *buf = calloc(1, need + 1);
        const uint8_t *b = pbf_bytes(in, need < 64 ? need : 64, &got);
        for (size_t i = 0; got && i < need; i++) buf[i] = b[i % got];
        if (H5Tget_class(type) != H5T_COMPOUND || got) H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        free(buf);
        H5Dclose(d);
    }
    H5Sclose(sp);
    H5Tclose(type);
}

/* Overwrites a few bytes of a dataset's data (in its own type: compound rows, floats, ...). */
static void patch_dset(hid_t f, const char *path, pbf_in *in) {
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return;
    hid_t type = H5Dget_type(d), sp = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    size_t es = H5Tget_size(type), bytes = (size_t)n * es;
    if (n > 0 && bytes <= (64u << 20) && H5Tis_variable_str(type) <= 0 && H5Tdetect_class(type, H5T_VLEN) <= 0) {
        unsigned char *buf = malloc(bytes);
        if (H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
            int k = 1 + pbf_u8(in) % 8;
            for (int i = 0; i < k; i++) {
                size_t at = pbf_u32(in) % bytes;
                uint8_t how = pbf_u8(in), v = pbf_u8(in);
                if (how % 3 == 0) buf[at] = v;
                else if (how % 3 == 1) buf[at] ^= (uint8_t)(1u << (v & 7));
                else if (at + 4 <= bytes) memcpy(buf + at, (const float[]){v & 1 ? NAN : (v & 2 ? INFINITY : 1e30f)}, 4);
            }
            H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        }
        free(buf);
    }
    H5Sclose(sp);
    H5Tclose(type);
    H5Dclose(d);
}

/* Shrinks a chunked dataset (a truncated /runs or curve). */
static void shrink_dset(hid_t f, const char *path, pbf_in *in) {
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return;
    hid_t sp = H5Dget_space(d);
    int rank = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[4];
    if (rank >= 1 && rank <= 4) {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        dims[0] = dims[0] ? pbf_u8(in) % dims[0] : 0;
        H5Dset_extent(d, dims);
    }
    H5Sclose(sp);
    H5Dclose(d);
}

int pbf_h5_mutate(const char *path, pbf_in *in) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) return -1;
    int n_ops = 1 + pbf_u8(in) % 6;
    for (int op = 0; op < n_ops && in->n; op++) {
        inventory *v = malloc(sizeof *v);
        take_inventory(f, v);
        uint8_t code = pbf_u8(in);
        uint32_t k = pbf_u32(in);
        int di = pick_dset(v, k);
        switch (code % 8) {
        case 0: /* an attribute gets another type, shape or value */
        case 1:
            if (v->n_attr) {
                int a = (int)(k % (uint32_t)v->n_attr);
                set_attr(f, v->obj[v->attr_obj[a]], v->attr[a], in);
            }
            break;
        case 2: /* an attribute is deleted */
            if (v->n_attr) {
                int a = (int)(k % (uint32_t)v->n_attr);
                H5Adelete_by_name(f, v->obj[v->attr_obj[a]], v->attr[a], H5P_DEFAULT);
            }
            break;
        case 3: /* a dataset is deleted */
            if (di >= 0) H5Ldelete(f, v->obj[di], H5P_DEFAULT);
            break;
        case 4: /* a dataset gets another shape (same type) */
            if (di >= 0) replace_dset(f, v->obj[di], in, 1);
            break;
        case 5: /* a dataset gets another type and shape */
            if (di >= 0) replace_dset(f, v->obj[di], in, 0);
            break;
        case 6: /* bytes of a dataset's data */
            if (di >= 0) patch_dset(f, v->obj[di], in);
            break;
        case 7: /* a dataset shrinks, or an extra attribute appears */
            if (di >= 0 && (k & 1)) shrink_dset(f, v->obj[di], in);
            else {
                char name[16];
                snprintf(name, sizeof name, "x%u", (unsigned)(k >> 1) % 100);
                set_attr(f, v->obj[(k >> 8) % (uint32_t)v->n_obj], name, in);
            }
            break;
        }
        free(v);
    }
    H5Fclose(f);
    return 0;
}

void pbf_copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb");
    if (!in) pbf_fail("cannot read %s", src);
    fseek(in, 0, SEEK_END);
    long n = ftell(in);
    fseek(in, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, in) != (size_t)n) pbf_fail("cannot read %s", src);
    fclose(in);
    pbf_write(dst, b, (size_t)n);
    free(b);
}

void pbf_truncate(const char *path, uint32_t keep) {
    FILE *f = fopen(path, "rb");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    if ((long)keep < n && truncate(path, keep)) pbf_fail("cannot truncate %s", path);
}
