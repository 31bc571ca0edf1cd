"""Read an R lazy-load database (data/Rdata.rdx + data/Rdata.rdb) without R.

Python 3 standard library only. Enough of R's XDR serialisation (format 2 and 3)
to read the character vectors, lists and data frames that R data packages ship,
e.g. r-cran-janeaustenr (each novel is a character vector, one element per line).

Layout of the database, as written by R's tools:::makeLazyLoadDB():
  Rdata.rdx  the index: a serialised named list (variables, references, compressed),
             compressed like one .rdb object (or gzip in old versions);
             `variables` maps each object name to c(offset, length) in Rdata.rdb.
  Rdata.rdb  the objects, each stored as a 4-byte big-endian uncompressed length,
             then (compression type 2/3 only) one byte 'Z' zlib, '2' bzip2, 'X' xz,
             '0' stored, then the compressed serialisation. Type 1 is plain zlib
             after the length.
A serialisation starts with b'X\\n' (XDR), version, writer R version, minimal R version
(version 3 adds a native-encoding string), then one item. Each item starts with a
32-bit flags word: SEXP type in the low 8 bits, has-attributes bit 9, has-tag bit 10.
"""
import bz2
import gzip
import lzma
import struct
import zlib

NILVALUE, REFSXP, EMPTYENV, GLOBALENV, UNBOUND, MISSINGARG = 254, 255, 242, 253, 252, 251
SYMSXP, LISTSXP, CLOSXP, PROMSXP, LANGSXP, CHARSXP = 1, 2, 3, 5, 6, 9
LGLSXP, INTSXP, REALSXP, STRSXP, DOTSXP, VECSXP, EXPRSXP = 10, 13, 14, 16, 17, 19, 20


class RVector(list):
    """An R vector that carried attributes (names, class, row.names...)."""

    def __init__(self, values, attrs):
        super().__init__(values)
        self.attrs = attrs


class _Reader:
    def __init__(self, data):
        self.b = data
        self.i = 0
        self.refs = []

    def int(self):
        v = struct.unpack_from('>i', self.b, self.i)[0]
        self.i += 4
        return v

    def header(self):
        if self.b[:2] != b'X\n':
            raise ValueError('not an XDR R serialisation (starts %r)' % self.b[:2])
        self.i = 2
        version = self.int()
        self.int()          # R version that wrote it
        self.int()          # minimal R version to read it
        if version == 3:
            n = self.int()  # native encoding name
            self.i += n
        elif version != 2:
            raise ValueError('unsupported R serialisation version %d' % version)

    def item(self):
        flags = self.int()
        t = flags & 0xff
        has_attr = flags & (1 << 9)
        has_tag = flags & (1 << 10)
        if t in (NILVALUE, 0, EMPTYENV, GLOBALENV, UNBOUND, MISSINGARG):
            return None
        if t == REFSXP:
            return self.refs[(flags >> 8) - 1]
        if t == SYMSXP:
            v = self.item()
            self.refs.append(v)
            return v
        if t == CHARSXP:
            n = self.int()
            if n == -1:
                return None     # NA_character_
            v = self.b[self.i:self.i + n].decode('utf8', 'replace')
            self.i += n
            return v
        if t in (LISTSXP, DOTSXP, LANGSXP, PROMSXP):     # pairlist: [(tag, value), ...]
            if has_attr:
                self.item()
            tag = self.item() if has_tag else None
            car = self.item()
            cdr = self.item()
            rest = cdr if isinstance(cdr, list) and cdr and isinstance(cdr[0], tuple) else []
            return [(tag, car)] + rest
        if t in (LGLSXP, INTSXP):
            n = self.int()
            v = list(struct.unpack_from('>%di' % n, self.b, self.i))
            self.i += 4 * n
        elif t == REALSXP:
            n = self.int()
            v = list(struct.unpack_from('>%dd' % n, self.b, self.i))
            self.i += 8 * n
        elif t in (STRSXP, VECSXP, EXPRSXP):
            n = self.int()
            v = [self.item() for _ in range(n)]
        else:
            raise ValueError('unsupported SEXP type %d at byte %d' % (t, self.i))
        if has_attr:
            return RVector(v, {k: x for k, x in self.item()})
        return v


def unserialize(data):
    r = _Reader(data)
    r.header()
    return r.item()


def decompress(blob):
    """One object of a lazy-load database: 4-byte length, optional type byte, payload."""
    kind = blob[4:5]
    if kind == b'Z':
        return zlib.decompress(blob[5:])
    if kind == b'2':
        return bz2.decompress(blob[5:])
    if kind == b'X':
        return lzma.decompress(blob[5:])
    if kind == b'0':
        return blob[5:]
    return zlib.decompress(blob[4:])


def load(base):
    """{name: object} for the database base + '.rdx' / base + '.rdb'."""
    with open(base + '.rdx', 'rb') as f:
        raw = f.read()
    index = unserialize(gzip.decompress(raw) if raw[:2] == b'\x1f\x8b' else decompress(raw))
    index = dict(zip(index.attrs['names'], index))
    variables = index['variables']
    with open(base + '.rdb', 'rb') as f:
        db = f.read()
    out = {}
    for name, (off, length) in zip(variables.attrs['names'], variables):
        off, length = int(off), int(length)
        out[name] = unserialize(decompress(db[off:off + length]))
    return out
