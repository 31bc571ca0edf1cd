/* unicode.c — UTF-8 decoding and the class lookup over the generated table (unicode.h). */
#include "unicode.h"

pb_uc_class_t pb_uc_class(uint32_t cp) {
    size_t lo = 0, hi = pb_uc_n_ranges; /* search [lo, hi) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < pb_uc_ranges[mid].lo) hi = mid;
        else if (cp > pb_uc_ranges[mid].hi) lo = mid + 1;
        else return (pb_uc_class_t)pb_uc_ranges[mid].cls;
    }
    return PB_UC_OTHER;
}

size_t pb_utf8_next(const unsigned char *s, size_t len, uint32_t *cp) {
    unsigned c = s[0];
    *cp = PB_UC_INVALID;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte (Table 3-7) */
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) n = 2, v = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;      /* no overlongs */
        else if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, v = c & 0x07;
        if (c == 0xF0) lo = 0x90;      /* no overlongs */
        else if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
    } else
        return 1; /* 0x80..0xC1 (continuation or overlong lead), 0xF5..0xFF */
    if (len < n) return 1;
    if (s[1] < lo || s[1] > hi) return 1;
    for (size_t i = 1; i < n; i++) {
        if (i > 1 && (s[i] < 0x80 || s[i] > 0xBF)) return 1;
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return n;
}
