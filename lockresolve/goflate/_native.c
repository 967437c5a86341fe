/*
 * Go's compress/flate at BestSpeed, byte for byte, in C: the accelerator of
 * lockresolve.goflate (pure.py is the reference and the fallback).
 *
 * A port of Go 1.19's deflate.go (encSpeed, close), deflatefast.go (the
 * Snappy-style matcher), huffman_bit_writer.go (writeBlockDynamic,
 * writeBlockHuff, stored blocks) and huffman_code.go (length-limited
 * Huffman codes by Go's lazy package-merge), kept in the same order and with
 * the same names where that helps reading them side by side.  C99 and the
 * CPython API only.
 *
 * One Deflater object is one raw DEFLATE stream (the gzip framing is done in
 * Python): compress(data) buffers input into 65,535-byte windows and returns
 * the bytes of every window it completed; flush() encodes the last window and
 * ends the stream.  The GIL is released while windows are encoded; the state
 * is a fixed ~0.5 MB per object plus the output of one call.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STORE_BLOCK 65535
#define MAX_MATCH_OFFSET 32768
#define MAX_MATCH_LENGTH 258
#define BASE_MATCH_LENGTH 3
#define BASE_MATCH_OFFSET 1
#define TABLE_BITS 14
#define TABLE_SIZE (1 << TABLE_BITS)
#define TABLE_MASK (TABLE_SIZE - 1)
#define TABLE_SHIFT (32 - TABLE_BITS)
#define BUFFER_RESET (INT32_MAX - MAX_STORE_BLOCK * 2)
#define INPUT_MARGIN (16 - 1)
#define MAX_NUM_LIT 286
#define OFFSET_CODE_COUNT 30
#define END_BLOCK_MARKER 256
#define LENGTH_CODES_START 257
#define CODEGEN_CODE_COUNT 19
#define BAD_CODE 255
#define MAX_BITS_LIMIT 16
#define MATCH_TYPE (1u << 30)
#define LENGTH_SHIFT 22
#define OFFSET_MASK ((1u << LENGTH_SHIFT) - 1)

/* --- tables (token.go, huffman_bit_writer.go) --------------------------------------- */

static const int8_t length_extra_bits[29] = {
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
};
static const uint32_t length_base[29] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  10,  12,  14,  16,  20,  24,
    28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 255,
};
static const int8_t offset_extra_bits[OFFSET_CODE_COUNT] = {
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
};
static const uint32_t offset_base[OFFSET_CODE_COUNT] = {
    0x000000, 0x000001, 0x000002, 0x000003, 0x000004, 0x000006, 0x000008, 0x00000c,
    0x000010, 0x000018, 0x000020, 0x000030, 0x000040, 0x000060, 0x000080, 0x0000c0,
    0x000100, 0x000180, 0x000200, 0x000300, 0x000400, 0x000600, 0x000800, 0x000c00,
    0x001000, 0x001800, 0x002000, 0x003000, 0x004000, 0x006000,
};
static const uint8_t codegen_order[CODEGEN_CODE_COUNT] = {
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
};

/* lengthCodes[length - 3] and offsetCodes[0..255], built from the bases at import. */
static uint8_t length_codes[256];
static uint8_t offset_codes[256];

static void
init_tables(void)
{
    int code = 0;
    for (int x = 0; x < 256; x++) {
        while (code + 1 < 29 && length_base[code + 1] <= (uint32_t)x) {
            code++;
        }
        length_codes[x] = (uint8_t)code;
    }
    code = 0;
    for (int x = 0; x < 256; x++) {
        while (code + 1 < 16 && offset_base[code + 1] <= (uint32_t)x) {
            code++;
        }
        offset_codes[x] = (uint8_t)code;
    }
}

static inline uint32_t
offset_code(uint32_t off)
{
    if (off < 256) {
        return offset_codes[off];
    }
    if ((off >> 7) < 256) {
        return offset_codes[off >> 7] + 14u;
    }
    return offset_codes[off >> 14] + 28u;
}

/* --- Huffman codes (huffman_code.go) ------------------------------------------------- */

typedef struct {
    uint16_t code;
    uint16_t len;
} hcode;

typedef struct {
    uint16_t literal;
    int32_t freq;
} literal_node;

typedef struct {
    int32_t level;
    int64_t last_freq;
    int64_t next_char_freq;
    int64_t next_pair_freq;
    int32_t needed;
} level_info;

static inline uint16_t
reverse_bits(uint16_t number, int bit_length)
{
    uint16_t v = (uint16_t)(number << (16 - bit_length));
    uint16_t r = 0;
    for (int i = 0; i < 16; i++) {
        r = (uint16_t)((r << 1) | (v & 1));
        v >>= 1;
    }
    return r;
}

static int
by_freq(const void *a, const void *b)
{
    const literal_node *x = a, *y = b;
    if (x->freq == y->freq) {
        return (int)x->literal - (int)y->literal;
    }
    return x->freq < y->freq ? -1 : 1;
}

static int
by_literal(const void *a, const void *b)
{
    const literal_node *x = a, *y = b;
    return (int)x->literal - (int)y->literal;
}

/* Go's huffmanEncoder.bitCounts: list holds n >= 3 nodes plus room for a sentinel. */
static void
bit_counts(literal_node *list, int32_t n, int32_t max_bits, int32_t *bit_count)
{
    level_info levels[MAX_BITS_LIMIT + 1];
    int32_t leaf_counts[MAX_BITS_LIMIT + 1][MAX_BITS_LIMIT + 1];
    memset(levels, 0, sizeof(levels));
    memset(leaf_counts, 0, sizeof(leaf_counts));
    list[n].literal = UINT16_MAX;
    list[n].freq = INT32_MAX;
    if (max_bits > n - 1) {
        max_bits = n - 1;
    }
    for (int32_t level = 1; level <= max_bits; level++) {
        levels[level].level = level;
        levels[level].last_freq = list[1].freq;
        levels[level].next_char_freq = list[2].freq;
        levels[level].next_pair_freq = (int64_t)list[0].freq + list[1].freq;
        levels[level].needed = 0;
        leaf_counts[level][level] = 2;
        if (level == 1) {
            levels[level].next_pair_freq = INT32_MAX;
        }
    }
    levels[max_bits].needed = 2 * n - 4;
    int32_t level = max_bits;
    for (;;) {
        level_info *l = &levels[level];
        if (l->next_pair_freq == INT32_MAX && l->next_char_freq == INT32_MAX) {
            l->needed = 0;
            levels[level + 1].next_pair_freq = INT32_MAX;
            level++;
            continue;
        }
        int64_t prev_freq = l->last_freq;
        if (l->next_char_freq < l->next_pair_freq) {
            int32_t k = leaf_counts[level][level] + 1;
            l->last_freq = l->next_char_freq;
            leaf_counts[level][level] = k;
            l->next_char_freq = list[k].freq;
        }
        else {
            l->last_freq = l->next_pair_freq;
            memcpy(leaf_counts[level], leaf_counts[level - 1], sizeof(int32_t) * (size_t)level);
            levels[l->level - 1].needed = 2;
        }
        if (--l->needed == 0) {
            if (l->level == max_bits) {
                break;
            }
            levels[l->level + 1].next_pair_freq = prev_freq + l->last_freq;
            level++;
        }
        else {
            while (levels[level - 1].needed > 0) {
                level--;
            }
        }
    }
    for (int i = 0; i <= MAX_BITS_LIMIT; i++) {
        bit_count[i] = 0;
    }
    int bits = 1;
    int32_t *counts = leaf_counts[max_bits];
    for (int32_t lv = max_bits; lv > 0; lv--) {
        bit_count[bits] = counts[lv] - counts[lv - 1];
        bits++;
    }
    bit_count[MAX_BITS_LIMIT] = max_bits; /* the slice length, minus one */
}

/* Go's huffmanEncoder.generate over freq[0..nfreq). */
static void
huffman_generate(hcode *codes, const int32_t *freq, int nfreq, int32_t max_bits)
{
    literal_node list[MAX_NUM_LIT + 1];
    int32_t count = 0;
    for (int i = 0; i < nfreq; i++) {
        if (freq[i] != 0) {
            list[count].literal = (uint16_t)i;
            list[count].freq = freq[i];
            count++;
        }
        else {
            codes[i].len = 0;
        }
    }
    if (count <= 2) {
        for (int32_t i = 0; i < count; i++) {
            codes[list[i].literal].code = (uint16_t)i;
            codes[list[i].literal].len = 1;
        }
        return;
    }
    qsort(list, (size_t)count, sizeof(literal_node), by_freq);
    int32_t bit_count[MAX_BITS_LIMIT + 1];
    bit_counts(list, count, max_bits, bit_count);
    int32_t top = bit_count[MAX_BITS_LIMIT];
    uint16_t code = 0;
    int32_t len = count;
    for (int32_t n = 0; n <= top; n++) {
        code = (uint16_t)(code << 1);
        int32_t bits = n == 0 ? 0 : bit_count[n];
        if (n == 0 || bits == 0) {
            continue;
        }
        literal_node *chunk = list + (len - bits);
        qsort(chunk, (size_t)bits, sizeof(literal_node), by_literal);
        for (int32_t i = 0; i < bits; i++) {
            codes[chunk[i].literal].code = reverse_bits(code, n);
            codes[chunk[i].literal].len = (uint16_t)n;
            code++;
        }
        len -= bits;
    }
}

static int
bit_length(const hcode *codes, const int32_t *freq, int nfreq)
{
    int total = 0;
    for (int i = 0; i < nfreq; i++) {
        if (freq[i] != 0) {
            total += (int)freq[i] * (int)codes[i].len;
        }
    }
    return total;
}

/* --- the encoder state -------------------------------------------------------------- */

typedef struct {
    uint32_t val;
    int32_t offset;
} table_entry;

typedef struct {
    PyObject_HEAD
    /* deflateFast */
    table_entry table[TABLE_SIZE];
    uint8_t prev[MAX_STORE_BLOCK];
    int32_t prev_len;
    int32_t cur;
    /* compressor: the pending window */
    uint8_t window[MAX_STORE_BLOCK];
    int32_t window_end;
    uint32_t tokens[MAX_STORE_BLOCK + 1];
    int32_t ntokens;
    /* huffmanBitWriter */
    uint64_t bits;
    unsigned nbits;
    int32_t literal_freq[MAX_NUM_LIT];
    int32_t offset_freq[OFFSET_CODE_COUNT];
    int32_t codegen_freq[CODEGEN_CODE_COUNT];
    uint8_t codegen[MAX_NUM_LIT + OFFSET_CODE_COUNT + 1];
    hcode literal_encoding[MAX_NUM_LIT];
    hcode offset_encoding[OFFSET_CODE_COUNT];
    hcode codegen_encoding[CODEGEN_CODE_COUNT];
    /* output of the current call */
    uint8_t *out;
    size_t out_len;
    size_t out_cap;
    int out_failed;
    int finished;
    int busy;
} Deflater;

static hcode huff_offset[OFFSET_CODE_COUNT];

/* --- output ---------------------------------------------------------------------------- */

/* Room for n more bytes (called without the GIL: raw allocator only). */
static int
reserve(Deflater *d, size_t n)
{
    if (d->out_failed) {
        return -1;
    }
    if (d->out_len + n <= d->out_cap) {
        return 0;
    }
    size_t cap = d->out_cap ? d->out_cap : 1 << 16;
    while (cap < d->out_len + n) {
        cap *= 2;
    }
    uint8_t *p = realloc(d->out, cap);
    if (p == NULL) {
        d->out_failed = 1;
        return -1;
    }
    d->out = p;
    d->out_cap = cap;
    return 0;
}

/* Callers reserve room first (see enc_speed). */
static inline void
put6(Deflater *d)
{
    uint64_t bits = d->bits;
    uint8_t *p = d->out + d->out_len;
    p[0] = (uint8_t)bits;
    p[1] = (uint8_t)(bits >> 8);
    p[2] = (uint8_t)(bits >> 16);
    p[3] = (uint8_t)(bits >> 24);
    p[4] = (uint8_t)(bits >> 32);
    p[5] = (uint8_t)(bits >> 40);
    d->out_len += 6;
    d->bits >>= 48;
    d->nbits -= 48;
}

static inline void
write_bits(Deflater *d, uint32_t b, unsigned nb)
{
    d->bits |= (uint64_t)b << d->nbits;
    d->nbits += nb;
    if (d->nbits >= 48) {
        put6(d);
    }
}

static inline void
write_code(Deflater *d, hcode c)
{
    d->bits |= (uint64_t)c.code << d->nbits;
    d->nbits += c.len;
    if (d->nbits >= 48) {
        put6(d);
    }
}

/* Go's flush: the pending bits, padded to a whole byte. */
static void
flush_bits(Deflater *d)
{
    while (d->nbits != 0) {
        d->out[d->out_len++] = (uint8_t)d->bits;
        d->bits >>= 8;
        d->nbits = d->nbits > 8 ? d->nbits - 8 : 0;
    }
    d->bits = 0;
}

static void
write_bytes(Deflater *d, const uint8_t *bytes, size_t n)
{
    /* nbits is a multiple of 8 here (after a stored header) */
    while (d->nbits != 0) {
        d->out[d->out_len++] = (uint8_t)d->bits;
        d->bits >>= 8;
        d->nbits -= 8;
    }
    memcpy(d->out + d->out_len, bytes, n);
    d->out_len += n;
}

static void
write_stored_header(Deflater *d, int length, int is_eof)
{
    write_bits(d, is_eof ? 1u : 0u, 3);
    flush_bits(d);
    write_bits(d, (uint32_t)length, 16);
    write_bits(d, (uint32_t)(~(uint16_t)length) & 0xFFFFu, 16);
}

static void
write_stored_block(Deflater *d, const uint8_t *buf, int n)
{
    write_stored_header(d, n, 0);
    write_bytes(d, buf, (size_t)n);
}

/* --- block writer (huffman_bit_writer.go) -------------------------------------------- */

static void
generate_codegen(Deflater *d, int num_literals, int num_offsets, const hcode *lit_enc,
                 const hcode *off_enc)
{
    uint8_t *codegen = d->codegen;
    memset(d->codegen_freq, 0, sizeof(d->codegen_freq));
    for (int i = 0; i < num_literals; i++) {
        codegen[i] = (uint8_t)lit_enc[i].len;
    }
    for (int i = 0; i < num_offsets; i++) {
        codegen[num_literals + i] = (uint8_t)off_enc[i].len;
    }
    codegen[num_literals + num_offsets] = BAD_CODE;
    uint8_t size = codegen[0];
    int count = 1;
    int out_index = 0;
    for (int in_index = 1; size != BAD_CODE; in_index++) {
        uint8_t next_size = codegen[in_index];
        if (next_size == size) {
            count++;
            continue;
        }
        if (size != 0) {
            codegen[out_index++] = size;
            d->codegen_freq[size]++;
            count--;
            while (count >= 3) {
                int n = count < 6 ? count : 6;
                codegen[out_index++] = 16;
                codegen[out_index++] = (uint8_t)(n - 3);
                d->codegen_freq[16]++;
                count -= n;
            }
        }
        else {
            while (count >= 11) {
                int n = count < 138 ? count : 138;
                codegen[out_index++] = 18;
                codegen[out_index++] = (uint8_t)(n - 11);
                d->codegen_freq[18]++;
                count -= n;
            }
            if (count >= 3) {
                codegen[out_index++] = 17;
                codegen[out_index++] = (uint8_t)(count - 3);
                d->codegen_freq[17]++;
                count = 0;
            }
        }
        count--;
        for (; count >= 0; count--) {
            codegen[out_index++] = size;
            d->codegen_freq[size]++;
        }
        size = next_size;
        count = 1;
    }
    codegen[out_index] = BAD_CODE;
}

static int
dynamic_size(Deflater *d, const hcode *lit_enc, const hcode *off_enc, int *num_codegens)
{
    int n = CODEGEN_CODE_COUNT;
    while (n > 4 && d->codegen_freq[codegen_order[n - 1]] == 0) {
        n--;
    }
    int header = 3 + 5 + 5 + 4 + (3 * n) +
                 bit_length(d->codegen_encoding, d->codegen_freq, CODEGEN_CODE_COUNT) +
                 (int)d->codegen_freq[16] * 2 + (int)d->codegen_freq[17] * 3 +
                 (int)d->codegen_freq[18] * 7;
    *num_codegens = n;
    return header + bit_length(lit_enc, d->literal_freq, MAX_NUM_LIT) +
           bit_length(off_enc, d->offset_freq, OFFSET_CODE_COUNT);
}

static void
write_dynamic_header(Deflater *d, int num_literals, int num_offsets, int num_codegens)
{
    write_bits(d, 4, 3); /* not the final block */
    write_bits(d, (uint32_t)(num_literals - 257), 5);
    write_bits(d, (uint32_t)(num_offsets - 1), 5);
    write_bits(d, (uint32_t)(num_codegens - 4), 4);
    for (int i = 0; i < num_codegens; i++) {
        write_bits(d, d->codegen_encoding[codegen_order[i]].len, 3);
    }
    int i = 0;
    for (;;) {
        int code_word = d->codegen[i++];
        if (code_word == BAD_CODE) {
            break;
        }
        write_code(d, d->codegen_encoding[code_word]);
        switch (code_word) {
        case 16:
            write_bits(d, d->codegen[i++], 2);
            break;
        case 17:
            write_bits(d, d->codegen[i++], 3);
            break;
        case 18:
            write_bits(d, d->codegen[i++], 7);
            break;
        default:
            break;
        }
    }
}

/* Go's writeBlockHuff (never the final block). */
static void
write_block_huff(Deflater *d, const uint8_t *input, int n)
{
    memset(d->literal_freq, 0, sizeof(d->literal_freq));
    for (int i = 0; i < n; i++) {
        d->literal_freq[input[i]]++;
    }
    d->literal_freq[END_BLOCK_MARKER] = 1;
    d->offset_freq[0] = 1;
    huffman_generate(d->literal_encoding, d->literal_freq, MAX_NUM_LIT, 15);
    generate_codegen(d, END_BLOCK_MARKER + 1, 1, d->literal_encoding, huff_offset);
    huffman_generate(d->codegen_encoding, d->codegen_freq, CODEGEN_CODE_COUNT, 7);
    int num_codegens;
    /* huffOffset codes only offset 0 (one bit): the stale offsetFreq entries count nothing */
    int size = dynamic_size(d, d->literal_encoding, huff_offset, &num_codegens);
    int ssize = (n + 5) * 8;
    if (ssize < size + (size >> 4)) {
        write_stored_block(d, input, n);
        return;
    }
    write_dynamic_header(d, END_BLOCK_MARKER + 1, 1, num_codegens);
    const hcode *encoding = d->literal_encoding;
    for (int i = 0; i < n; i++) {
        write_code(d, encoding[input[i]]);
    }
    write_code(d, encoding[END_BLOCK_MARKER]);
}

/* Go's writeBlockDynamic for d->tokens (never the final block). */
static void
write_block_dynamic(Deflater *d, const uint8_t *input, int n)
{
    memset(d->literal_freq, 0, sizeof(d->literal_freq));
    memset(d->offset_freq, 0, sizeof(d->offset_freq));
    const uint32_t *tokens = d->tokens;
    int32_t ntokens = d->ntokens;
    for (int32_t i = 0; i < ntokens; i++) {
        uint32_t t = tokens[i];
        if (t < MATCH_TYPE) {
            d->literal_freq[t]++;
            continue;
        }
        uint32_t length = (t - MATCH_TYPE) >> LENGTH_SHIFT;
        uint32_t offset = t & OFFSET_MASK;
        d->literal_freq[LENGTH_CODES_START + length_codes[length]]++;
        d->offset_freq[offset_code(offset)]++;
    }
    d->literal_freq[END_BLOCK_MARKER]++;
    int num_literals = MAX_NUM_LIT;
    while (d->literal_freq[num_literals - 1] == 0) {
        num_literals--;
    }
    int num_offsets = OFFSET_CODE_COUNT;
    while (num_offsets > 0 && d->offset_freq[num_offsets - 1] == 0) {
        num_offsets--;
    }
    if (num_offsets == 0) {
        d->offset_freq[0] = 1;
        num_offsets = 1;
    }
    huffman_generate(d->literal_encoding, d->literal_freq, MAX_NUM_LIT, 15);
    huffman_generate(d->offset_encoding, d->offset_freq, OFFSET_CODE_COUNT, 15);
    generate_codegen(d, num_literals, num_offsets, d->literal_encoding, d->offset_encoding);
    huffman_generate(d->codegen_encoding, d->codegen_freq, CODEGEN_CODE_COUNT, 7);
    int num_codegens;
    int size = dynamic_size(d, d->literal_encoding, d->offset_encoding, &num_codegens);
    int ssize = (n + 5) * 8;
    if (ssize < size + (size >> 4)) {
        write_stored_block(d, input, n);
        return;
    }
    write_dynamic_header(d, num_literals, num_offsets, num_codegens);
    const hcode *le = d->literal_encoding;
    const hcode *oe = d->offset_encoding;
    for (int32_t i = 0; i < ntokens; i++) {
        uint32_t t = tokens[i];
        if (t < MATCH_TYPE) {
            write_code(d, le[t]);
            continue;
        }
        uint32_t length = (t - MATCH_TYPE) >> LENGTH_SHIFT;
        uint32_t lc = length_codes[length];
        write_code(d, le[lc + LENGTH_CODES_START]);
        unsigned extra_length_bits = (unsigned)length_extra_bits[lc];
        if (extra_length_bits > 0) {
            write_bits(d, length - length_base[lc], extra_length_bits);
        }
        uint32_t offset = t & OFFSET_MASK;
        uint32_t oc = offset_code(offset);
        write_code(d, oe[oc]);
        unsigned extra_offset_bits = (unsigned)offset_extra_bits[oc];
        if (extra_offset_bits > 0) {
            write_bits(d, offset - offset_base[oc], extra_offset_bits);
        }
    }
    write_code(d, le[END_BLOCK_MARKER]);
}

/* --- the matcher (deflatefast.go) ---------------------------------------------------- */

static inline uint32_t
load32(const uint8_t *b, int32_t i)
{
    const uint8_t *p = b + i;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t
load64(const uint8_t *b, int32_t i)
{
    return (uint64_t)load32(b, i) | (uint64_t)load32(b, i + 4) << 32;
}

static inline uint32_t
hash(uint32_t u)
{
    return (u * 0x1e35a7bdu) >> TABLE_SHIFT;
}

static void
shift_offsets(Deflater *d)
{
    if (d->prev_len == 0) {
        memset(d->table, 0, sizeof(d->table));
        d->cur = MAX_MATCH_OFFSET + 1;
        return;
    }
    for (int i = 0; i < TABLE_SIZE; i++) {
        int64_t v = (int64_t)d->table[i].offset - d->cur + MAX_MATCH_OFFSET + 1;
        if (v < 0) {
            v = 0;
        }
        d->table[i].offset = (int32_t)v;
    }
    d->cur = MAX_MATCH_OFFSET + 1;
}

/* Go's deflateFast.reset. */
static void
fast_reset(Deflater *d)
{
    d->prev_len = 0;
    d->cur += MAX_MATCH_OFFSET;
    if (d->cur >= BUFFER_RESET) {
        shift_offsets(d);
    }
}

/* How many leading bytes of a and b (n bytes each) are equal: 8 at a time, then 1. */
static inline int32_t
common_prefix(const uint8_t *a, const uint8_t *b, int32_t n)
{
    int32_t i = 0;
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) {
            return i + (int32_t)(__builtin_ctzll(x ^ y) >> 3);
        }
    }
#endif
    for (; i < n; i++) {
        if (a[i] != b[i]) {
            return i;
        }
    }
    return n;
}

/* Go's matchLen: t < 0 starts the match in the previous block. */
static int32_t
match_len(const Deflater *d, int32_t s, int32_t t, const uint8_t *src, int32_t n)
{
    int32_t s1 = s + MAX_MATCH_LENGTH - 4;
    if (s1 > n) {
        s1 = n;
    }
    if (t >= 0) {
        return common_prefix(src + s, src + t, s1 - s);
    }
    int32_t tp = d->prev_len + t;
    if (tp < 0) {
        return 0;
    }
    int32_t alen = s1 - s;
    int32_t blen = d->prev_len - tp;
    if (blen > alen) {
        blen = alen;
    }
    int32_t m = common_prefix(src + s, d->prev + tp, blen);
    if (m < blen || s + m == s1) {
        return m;
    }
    return m + common_prefix(src + s + m, src, s1 - (s + m));
}

/* Go's deflateFast.encode for a window of at least 17 bytes: tokens into d->tokens. */
static void
fast_encode(Deflater *d, const uint8_t *src, int32_t n)
{
    if (d->cur >= BUFFER_RESET) {
        shift_offsets(d);
    }
    uint32_t *dst = d->tokens;
    int32_t nt = 0;
    table_entry *table = d->table;
    int32_t cur = d->cur;
    int32_t s_limit = n - INPUT_MARGIN;
    int32_t next_emit = 0;
    int32_t s = 0;
    uint32_t cv = load32(src, s);
    uint32_t next_hash = hash(cv);
    for (;;) {
        int32_t skip = 32;
        int32_t next_s = s;
        table_entry candidate;
        for (;;) {
            s = next_s;
            int32_t step = skip >> 5;
            next_s = s + step;
            skip += step;
            if (next_s > s_limit) {
                goto emit_remainder;
            }
            candidate = table[next_hash & TABLE_MASK];
            uint32_t now = load32(src, next_s);
            table[next_hash & TABLE_MASK].offset = s + cur;
            table[next_hash & TABLE_MASK].val = cv;
            next_hash = hash(now);
            int64_t offset = (int64_t)s - ((int64_t)candidate.offset - cur);
            if (offset > MAX_MATCH_OFFSET || cv != candidate.val) {
                cv = now;
                continue;
            }
            break;
        }
        for (int32_t i = next_emit; i < s; i++) {
            dst[nt++] = src[i];
        }
        for (;;) {
            s += 4;
            int32_t t = candidate.offset - cur + 4;
            int32_t l = match_len(d, s, t, src, n);
            dst[nt++] = MATCH_TYPE + ((uint32_t)(l + 4 - BASE_MATCH_LENGTH) << LENGTH_SHIFT) +
                        (uint32_t)(s - t - BASE_MATCH_OFFSET);
            s += l;
            next_emit = s;
            if (s >= s_limit) {
                goto emit_remainder;
            }
            uint64_t x = load64(src, s - 1);
            uint32_t prev_hash = hash((uint32_t)x);
            table[prev_hash & TABLE_MASK].offset = cur + s - 1;
            table[prev_hash & TABLE_MASK].val = (uint32_t)x;
            x >>= 8;
            uint32_t curr_hash = hash((uint32_t)x);
            candidate = table[curr_hash & TABLE_MASK];
            table[curr_hash & TABLE_MASK].offset = cur + s;
            table[curr_hash & TABLE_MASK].val = (uint32_t)x;
            int64_t offset = (int64_t)s - ((int64_t)candidate.offset - cur);
            if (offset > MAX_MATCH_OFFSET || (uint32_t)x != candidate.val) {
                cv = (uint32_t)(x >> 8);
                next_hash = hash(cv);
                s++;
                break;
            }
        }
    }
emit_remainder:
    for (int32_t i = next_emit; i < n; i++) {
        dst[nt++] = src[i];
    }
    d->ntokens = nt;
    d->cur += n;
    memcpy(d->prev, src, (size_t)n);
    d->prev_len = n;
}

/* --- compressor (deflate.go) ---------------------------------------------------------- */

/* Go's encSpeed for the pending window; sync: the end of the stream. -1 when out of memory. */
static int
enc_speed(Deflater *d, int sync)
{
    int32_t n = d->window_end;
    if (n < MAX_STORE_BLOCK) {
        if (!sync) {
            return 0;
        }
        if (n < 128) {
            if (n == 0) {
                return 0;
            }
            if (reserve(d, 2 * (size_t)n + 1024) < 0) {
                return -1;
            }
            if (n <= 16) {
                write_stored_block(d, d->window, n);
            }
            else {
                write_block_huff(d, d->window, n);
            }
            d->window_end = 0;
            fast_reset(d);
            return 0;
        }
    }
    /* A coded block is chosen only when its size without the extra bits of lengths and
     * offsets is below the stored size; those add at most 18 bits per 4-byte match. */
    if (reserve(d, 2 * (size_t)n + 1024) < 0) {
        return -1;
    }
    fast_encode(d, d->window, n);
    if (d->ntokens > n - (n >> 4)) {
        write_block_huff(d, d->window, n);
    }
    else {
        write_block_dynamic(d, d->window, n);
    }
    d->window_end = 0;
    return 0;
}

/* Go's compressor.write: fill the window, encode it when full. */
static int
feed(Deflater *d, const uint8_t *b, Py_ssize_t len)
{
    while (len > 0) {
        if (d->window_end == MAX_STORE_BLOCK && enc_speed(d, 0) < 0) {
            return -1;
        }
        Py_ssize_t room = MAX_STORE_BLOCK - d->window_end;
        Py_ssize_t k = len < room ? len : room;
        memcpy(d->window + d->window_end, b, (size_t)k);
        d->window_end += (int32_t)k;
        b += k;
        len -= k;
    }
    /* A full window is encoded now rather than at the next write: same bytes, sooner. */
    if (d->window_end == MAX_STORE_BLOCK && enc_speed(d, 0) < 0) {
        return -1;
    }
    return 0;
}

static int
finish(Deflater *d)
{
    if (enc_speed(d, 1) < 0 || reserve(d, 16) < 0) {
        return -1;
    }
    write_stored_header(d, 0, 1);
    flush_bits(d);
    return 0;
}

/* --- the Python type ------------------------------------------------------------------ */

static PyObject *
take_output(Deflater *d)
{
    if (d->out_failed) {
        d->out_failed = 0;
        d->out_len = 0;
        return PyErr_NoMemory();
    }
    PyObject *result = PyBytes_FromStringAndSize((const char *)d->out, (Py_ssize_t)d->out_len);
    d->out_len = 0;
    /* Keep at most 1 MiB of output buffer between calls. */
    if (d->out_cap > (1u << 20)) {
        free(d->out);
        d->out = NULL;
        d->out_cap = 0;
    }
    return result;
}

static int
enter(Deflater *d)
{
    if (d->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Deflater is in use by another thread");
        return -1;
    }
    if (d->finished) {
        PyErr_SetString(PyExc_ValueError, "compress() after flush()");
        return -1;
    }
    d->busy = 1;
    return 0;
}

static PyObject *
Deflater_compress(Deflater *d, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (enter(d) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = feed(d, (const uint8_t *)view.buf, view.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    d->busy = 0;
    if (rc < 0) {
        d->out_failed = 1;
        d->finished = 1; /* the stream is broken: refuse further input */
    }
    return take_output(d);
}

static PyObject *
Deflater_flush(Deflater *d, PyObject *Py_UNUSED(ignored))
{
    if (d->finished && !d->busy) {
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    if (enter(d) < 0) {
        return NULL;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = finish(d);
    Py_END_ALLOW_THREADS
    d->busy = 0;
    d->finished = 1;
    if (rc < 0) {
        d->out_failed = 1;
    }
    return take_output(d);
}

static PyObject *
Deflater_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, ":Deflater", kwlist)) {
        return NULL;
    }
    Deflater *d = (Deflater *)type->tp_alloc(type, 0); /* zero-filled */
    if (d == NULL) {
        return NULL;
    }
    d->cur = MAX_STORE_BLOCK; /* newDeflateFast */
    return (PyObject *)d;
}

static void
Deflater_dealloc(Deflater *d)
{
    free(d->out);
    Py_TYPE(d)->tp_free((PyObject *)d);
}

static PyMethodDef Deflater_methods[] = {
    {"compress", (PyCFunction)Deflater_compress, METH_O,
     "compress(data) -> bytes: buffer data, return the DEFLATE bytes of completed windows."},
    {"flush", (PyCFunction)Deflater_flush, METH_NOARGS,
     "flush() -> bytes: encode the last window and end the stream."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DeflaterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lockresolve.goflate._native.Deflater",
    .tp_basicsize = sizeof(Deflater),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A raw DEFLATE stream exactly as Go's compress/flate writes it at BestSpeed.",
    .tp_new = Deflater_new,
    .tp_dealloc = (destructor)Deflater_dealloc,
    .tp_methods = Deflater_methods,
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "lockresolve.goflate._native",
    .m_doc = "Go's compress/flate BestSpeed encoder in C (see lockresolve/goflate/pure.py).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    init_tables();
    int32_t freq[OFFSET_CODE_COUNT] = {0};
    freq[0] = 1;
    huffman_generate(huff_offset, freq, OFFSET_CODE_COUNT, 15);
    if (PyType_Ready(&DeflaterType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&native_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&DeflaterType);
    if (PyModule_AddObject(m, "Deflater", (PyObject *)&DeflaterType) < 0) {
        Py_DECREF(&DeflaterType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
