/* test_snapshot.c: the snapshot format round-trips and rejects all damage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vcpud/error.h"
#include "vcpud/snapshot.h"

/* Odd lengths exercise every amount of padding; PENDING is empty. */
static const struct {
    uint32_t type, len;
} layout[] = {
    {VCPUD_SNAP_BACKEND, 10}, {VCPUD_SNAP_REGS, 144},  {VCPUD_SNAP_XSAVE, 13},
    {VCPUD_SNAP_PENDING, 0},  {VCPUD_SNAP_MPSTATE, 4}, {VCPUD_SNAP_EVENTS, 1},
    {VCPUD_SNAP_CPUID, 23},
};
#define NLAYOUT (sizeof(layout) / sizeof(layout[0]))

/* Never zero, so that a body byte read as padding is caught. */
static uint8_t pattern(uint32_t type, size_t k)
{
    return (uint8_t)(type * 31u + k * 7u + 1u) | 1u;
}

static void fill(uint8_t *body, uint32_t type, size_t len)
{
    for (size_t k = 0; k < len; k++)
        body[k] = pattern(type, k);
}

static void build(uint8_t **buf, size_t *len)
{
    struct vcpud_snap_writer w;
    struct vcpud_err err = {0};
    uint8_t body[256];
    void *out;
    int rc;

    vcpud_snap_writer_init(&w);
    for (size_t i = 0; i < NLAYOUT; i++) {
        fill(body, layout[i].type, layout[i].len);
        vcpud_snap_add(&w, layout[i].type, body, layout[i].len);
    }
    rc = vcpud_snap_finish(&w, &out, len, &err);
    assert_int_equal(0, rc);
    assert_non_null(out);
    *buf = out;
}

/* Offset of section (idx)'s header, found by walking a valid snapshot. */
static size_t section_off(const uint8_t *buf, size_t idx)
{
    size_t off = VCPUD_SNAP_HEADER_SIZE;

    for (size_t i = 0; i < idx; i++)
        off += 8 + ((vcpud_get_u32(buf + off + 4) + 7u) & ~7u);
    return off;
}

/* Make the CRC agree again, so that the damage reaches the later checks. */
static void reseal(uint8_t *buf, size_t len)
{
    vcpud_put_u32(buf + 24, vcpud_crc32(buf + VCPUD_SNAP_HEADER_SIZE,
                                        len - VCPUD_SNAP_HEADER_SIZE));
}

static void assert_empty(const struct vcpud_snap *snap)
{
    assert_int_equal(0, snap->nsections);
    for (uint32_t t = 0; t < VCPUD_SNAP_TYPE_MAX; t++)
        assert_null(vcpud_snap_get(snap, t));
}

/* Rejected with -EBADMSG, a message, and (needle) in it when given. */
static void expect_bad(const void *buf, size_t len, const char *needle)
{
    struct vcpud_snap snap;
    struct vcpud_err err = {0};
    int rc;

    /* Garbage first, to show parse leaves nothing half-filled behind. */
    memset(&snap, 0xa5, sizeof(snap));
    rc = vcpud_snap_parse(buf, len, &snap, &err);
    assert_int_equal(-EBADMSG, rc);
    assert_int_equal(-EBADMSG, err.code);
    assert_true(err.msg[0] != '\0');
    if (needle && !strstr(err.msg, needle))
        fail_msg("message \"%s\" does not mention \"%s\"", err.msg, needle);
    assert_empty(&snap);
}

static void test_crc32_check_values(void **state)
{
    static const char fox[] = "The quick brown fox jumps over the lazy dog";

    (void)state;
    assert_int_equal(0xcbf43926u, vcpud_crc32("123456789", 9));
    assert_int_equal(0x00000000u, vcpud_crc32("", 0));
    assert_int_equal(0x414fa339u, vcpud_crc32(fox, strlen(fox)));
}

/* Bit at a time, straight from the definition. */
static uint32_t crc32_reference(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xffffffffu;

    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc & 1u) ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
    }
    return ~crc;
}

/* Each byte value selects one table entry, so this checks all of them. */
static void test_crc32_table_matches_definition(void **state)
{
    uint8_t data[1021];

    (void)state;
    for (unsigned b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;

        assert_int_equal(crc32_reference(&byte, 1), vcpud_crc32(&byte, 1));
    }
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 2654435761u >> 13);
    assert_int_equal(crc32_reference(data, sizeof(data)),
                     vcpud_crc32(data, sizeof(data)));
}

static void test_type_names(void **state)
{
    (void)state;
#define CHECK_NAME(num, name, text)                                            \
    assert_string_equal(text, vcpud_snap_type_name(VCPUD_SNAP_##name));
    VCPUD_SNAP_TYPES(CHECK_NAME)
#undef CHECK_NAME
    assert_null(vcpud_snap_type_name(0));
    assert_null(vcpud_snap_type_name(VCPUD_SNAP_TYPE_MAX));
    assert_null(vcpud_snap_type_name(UINT32_MAX));
}

static void test_header_layout(void **state)
{
    uint8_t *buf;
    size_t len;

    (void)state;
    build(&buf, &len);
    assert_int_equal(0, len % 8);
    assert_memory_equal("VCPUDSNP", buf, 8);
    assert_int_equal(VCPUD_SNAP_VERSION, vcpud_get_u32(buf + 8));
    assert_int_equal(NLAYOUT, vcpud_get_u32(buf + 12));
    assert_int_equal(len - VCPUD_SNAP_HEADER_SIZE, vcpud_get_u64(buf + 16));
    assert_int_equal(vcpud_crc32(buf + 32, len - 32), vcpud_get_u32(buf + 24));
    assert_int_equal(0, vcpud_get_u32(buf + 28));
    for (size_t i = 0; i < NLAYOUT; i++) {
        size_t off = section_off(buf, i);
        size_t pad = (8 - layout[i].len % 8) % 8;

        assert_int_equal(layout[i].type, vcpud_get_u32(buf + off));
        assert_int_equal(layout[i].len, vcpud_get_u32(buf + off + 4));
        for (size_t k = 0; k < pad; k++)
            assert_int_equal(0, buf[off + 8 + layout[i].len + k]);
    }
    assert_int_equal(len, section_off(buf, NLAYOUT));
    free(buf);
}

static void test_round_trip(void **state)
{
    struct vcpud_snap snap;
    struct vcpud_err err = {0};
    uint8_t *buf, want[256];
    size_t len;
    int present[VCPUD_SNAP_TYPE_MAX] = {0};

    (void)state;
    build(&buf, &len);
    assert_int_equal(0, vcpud_snap_parse(buf, len, &snap, &err));
    assert_int_equal(NLAYOUT, snap.nsections);
    for (size_t i = 0; i < NLAYOUT; i++) {
        const struct vcpud_snap_section *s =
            vcpud_snap_get(&snap, layout[i].type);

        assert_non_null(s);
        assert_int_equal(layout[i].type, s->type);
        assert_int_equal(layout[i].len, s->len);
        /* Bodies are borrowed from the buffer, not copied. */
        assert_true(s->body >= buf && s->body + s->len <= buf + len);
        fill(want, layout[i].type, layout[i].len);
        if (s->len)
            assert_memory_equal(want, s->body, s->len);
        present[layout[i].type] = 1;
    }
    for (uint32_t t = 0; t < VCPUD_SNAP_TYPE_MAX; t++) {
        if (!present[t])
            assert_null(vcpud_snap_get(&snap, t));
    }
    free(buf);
}

static void test_round_trip_no_sections(void **state)
{
    struct vcpud_snap_writer w;
    struct vcpud_snap snap;
    struct vcpud_err err = {0};
    void *buf;
    size_t len;

    (void)state;
    vcpud_snap_writer_init(&w);
    assert_int_equal(0, vcpud_snap_finish(&w, &buf, &len, &err));
    assert_int_equal(VCPUD_SNAP_HEADER_SIZE, len);
    assert_int_equal(0, vcpud_snap_parse(buf, len, &snap, &err));
    assert_empty(&snap);
    free(buf);
}

static void test_truncated_at_every_length(void **state)
{
    uint8_t *buf, *copy;
    size_t len;

    (void)state;
    build(&buf, &len);
    for (size_t n = 0; n < len; n++) {
        /* An exact-size copy, so sanitizers catch a read past the end. */
        copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, buf, n);
        expect_bad(copy, n, "truncated");
        free(copy);
    }
    free(buf);
}

static void test_every_single_byte_change_rejected(void **state)
{
    uint8_t *buf;
    size_t len;

    (void)state;
    build(&buf, &len);
    for (size_t i = 0; i < len; i++) {
        uint8_t orig = buf[i];

        for (unsigned x = 1; x < 256; x++) {
            buf[i] = (uint8_t)(orig ^ x);
            expect_bad(buf, len, NULL);
        }
        buf[i] = orig;
    }
    free(buf);
}

static void test_trailing_bytes_rejected(void **state)
{
    uint8_t *buf, *longer;
    size_t len;

    (void)state;
    build(&buf, &len);
    longer = calloc(1, len + 8);
    assert_non_null(longer);
    memcpy(longer, buf, len);
    expect_bad(longer, len + 8, "trailing data");
    /* With the header made to agree, the extra bytes are a section. */
    vcpud_put_u64(longer + 16, len + 8 - VCPUD_SNAP_HEADER_SIZE);
    reseal(longer, len + 8);
    expect_bad(longer, len + 8, "unknown type 0");
    free(longer);
    free(buf);
}

static void test_oversize_rejected(void **state)
{
    size_t len = VCPUD_SNAP_MAX_SIZE + 8;
    uint8_t *buf = calloc(1, len);

    (void)state;
    assert_non_null(buf);
    memcpy(buf, VCPUD_SNAP_MAGIC, 8);
    vcpud_put_u32(buf + 8, VCPUD_SNAP_VERSION);
    vcpud_put_u64(buf + 16, len - VCPUD_SNAP_HEADER_SIZE);
    reseal(buf, len);
    expect_bad(buf, len, "limit");
    free(buf);
}

static void test_bad_magic(void **state)
{
    uint8_t *buf;
    size_t len;

    (void)state;
    build(&buf, &len);
    memcpy(buf,
           "\x7f"
           "ELF\x02\x01\x01\x00",
           8);
    expect_bad(buf, len, "\\x7fELF\\x02\\x01\\x01\\x00");
    free(buf);
}

static void test_bad_version(void **state)
{
    uint8_t *buf;
    size_t len;

    (void)state;
    build(&buf, &len);
    vcpud_put_u32(buf + 8, VCPUD_SNAP_VERSION + 1);
    expect_bad(buf, len, "version 2");
    vcpud_put_u32(buf + 8, 0);
    expect_bad(buf, len, "version 0");
    free(buf);
}

static void test_reserved_nonzero(void **state)
{
    uint8_t *buf;
    size_t len;

    (void)state;
    build(&buf, &len);
    vcpud_put_u32(buf + 28, 0x80000000u);
    expect_bad(buf, len, "0x80000000");
    free(buf);
}

static void test_payload_length_field_wrong(void **state)
{
    uint8_t *buf;
    size_t len;

    (void)state;
    build(&buf, &len);
    vcpud_put_u64(buf + 16, len - VCPUD_SNAP_HEADER_SIZE - 8);
    expect_bad(buf, len, "trailing data");
    vcpud_put_u64(buf + 16, len - VCPUD_SNAP_HEADER_SIZE + 8);
    expect_bad(buf, len, "truncated");
    vcpud_put_u64(buf + 16, UINT64_MAX);
    expect_bad(buf, len, "truncated");
    vcpud_put_u64(buf + 16, 0);
    expect_bad(buf, len, "trailing data");
    free(buf);
}

static void test_crc_mismatch(void **state)
{
    uint8_t *buf;
    size_t len;

    (void)state;
    build(&buf, &len);
    vcpud_put_u32(buf + 24, vcpud_get_u32(buf + 24) ^ 1u);
    expect_bad(buf, len, "CRC");
    free(buf);
}

static void test_nsections_over_limit(void **state)
{
    uint8_t *buf;
    size_t len;

    (void)state;
    build(&buf, &len);
    vcpud_put_u32(buf + 12, VCPUD_SNAP_MAX_SECTIONS + 1);
    expect_bad(buf, len, "at most");
    vcpud_put_u32(buf + 12, UINT32_MAX);
    expect_bad(buf, len, "at most");
    free(buf);
}

static void test_nsections_mismatch(void **state)
{
    uint8_t *buf;
    size_t len;

    (void)state;
    build(&buf, &len);
    vcpud_put_u32(buf + 12, NLAYOUT - 1);
    expect_bad(buf, len, "sections, the payload holds");
    vcpud_put_u32(buf + 12, NLAYOUT + 1);
    expect_bad(buf, len, "sections, the payload holds");
    vcpud_put_u32(buf + 12, 0);
    expect_bad(buf, len, "sections, the payload holds");
    free(buf);
}

static void set_section_len(uint8_t *buf, size_t len, size_t idx, uint32_t slen)
{
    vcpud_put_u32(buf + section_off(buf, idx) + 4, slen);
    reseal(buf, len);
}

static void test_section_past_end(void **state)
{
    const uint32_t huge[] = {UINT32_MAX, UINT32_MAX - 7, 0x80000000u,
                             VCPUD_SNAP_MAX_SIZE};
    uint8_t *buf;
    size_t len, last = NLAYOUT - 1, off;

    (void)state;
    build(&buf, &len);
    off = section_off(buf, last);
    /* One byte more than is left, once rounded up to the padding. */
    set_section_len(buf, len, last, (uint32_t)(len - off - 8 + 1));
    expect_bad(buf, len, "snapshot truncated: section 6 (cpuid) needs");
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        free(buf);
        build(&buf, &len);
        set_section_len(buf, len, 0, huge[i]);
        expect_bad(buf, len, "snapshot truncated: section 0 (backend)");
    }
    free(buf);
}

static void test_section_header_cut(void **state)
{
    uint8_t buf[VCPUD_SNAP_HEADER_SIZE + 4] = {0};

    (void)state;
    memcpy(buf, VCPUD_SNAP_MAGIC, 8);
    vcpud_put_u32(buf + 8, VCPUD_SNAP_VERSION);
    vcpud_put_u32(buf + 12, 1);
    vcpud_put_u64(buf + 16, 4);
    vcpud_put_u32(buf + 32, VCPUD_SNAP_REGS);
    reseal(buf, sizeof(buf));
    expect_bad(buf, sizeof(buf), "section 0 header needs 8 bytes");
}

/* A shorter body turns a pattern byte into padding, or shifts where the
 * next section starts; neither may pass. */
static void test_section_len_shrunk(void **state)
{
    uint8_t *buf;
    size_t len;

    (void)state;
    for (size_t i = 0; i < NLAYOUT; i++) {
        for (uint32_t cut = 1; cut <= layout[i].len && cut <= 24; cut++) {
            build(&buf, &len);
            set_section_len(buf, len, i, layout[i].len - cut);
            expect_bad(buf, len, NULL);
            free(buf);
        }
    }
}

static void test_unknown_type(void **state)
{
    const uint32_t bad[] = {0, VCPUD_SNAP_TYPE_MAX, 1000, UINT32_MAX};
    uint8_t *buf;
    size_t len;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        build(&buf, &len);
        vcpud_put_u32(buf + section_off(buf, 1), bad[i]);
        reseal(buf, len);
        expect_bad(buf, len, "unknown type");
        free(buf);
    }
}

static void test_duplicate_type(void **state)
{
    uint8_t *buf;
    size_t len;

    (void)state;
    build(&buf, &len);
    vcpud_put_u32(buf + section_off(buf, 4), layout[1].type);
    reseal(buf, len);
    expect_bad(buf, len, "two regs sections: 1 and 4");
    free(buf);
}

/* Every padding byte of the snapshot, one at a time. */
static void test_nonzero_padding(void **state)
{
    uint8_t *buf;
    size_t len, tried = 0;

    (void)state;
    build(&buf, &len);
    for (size_t i = 0; i < NLAYOUT; i++) {
        size_t body = section_off(buf, i) + 8;
        size_t pad = (8 - layout[i].len % 8) % 8;

        for (size_t k = 0; k < pad; k++) {
            buf[body + layout[i].len + k] = 0x01;
            reseal(buf, len);
            expect_bad(buf, len, "padding byte 0x01");
            buf[body + layout[i].len + k] = 0;
            tried++;
        }
    }
    reseal(buf, len);
    assert_true(tried > 20);
    free(buf);
}

static void test_need(void **state)
{
    const struct vcpud_snap_section *s;
    struct vcpud_snap snap;
    struct vcpud_err err = {0};
    uint8_t *buf;
    size_t len;
    int rc;

    (void)state;
    build(&buf, &len);
    assert_int_equal(0, vcpud_snap_parse(buf, len, &snap, &err));

    rc = vcpud_snap_need(&snap, VCPUD_SNAP_REGS, 144, &s, &err);
    assert_int_equal(0, rc);
    assert_ptr_equal(vcpud_snap_get(&snap, VCPUD_SNAP_REGS), s);
    rc = vcpud_snap_need(&snap, VCPUD_SNAP_PENDING, 0, &s, &err);
    assert_int_equal(0, rc);
    assert_non_null(s);
    assert_int_equal(0,
                     vcpud_snap_need(&snap, VCPUD_SNAP_MPSTATE, 4, NULL, &err));

    memset(&err, 0, sizeof(err));
    rc = vcpud_snap_need(&snap, VCPUD_SNAP_REGS, 152, &s, &err);
    assert_int_equal(-EBADMSG, rc);
    assert_int_equal(-EBADMSG, err.code);
    assert_null(s);
    assert_string_equal("snapshot regs section is 144 bytes, this vcpud "
                        "expects 152",
                        err.msg);

    rc = vcpud_snap_need(&snap, VCPUD_SNAP_XSAVE, 12, &s, &err);
    assert_int_equal(-EBADMSG, rc);
    assert_null(s);

    memset(&err, 0, sizeof(err));
    rc = vcpud_snap_need(&snap, VCPUD_SNAP_LAPIC, 1024, &s, &err);
    assert_int_equal(-EBADMSG, rc);
    assert_null(s);
    assert_string_equal("snapshot has no lapic section", err.msg);

    rc = vcpud_snap_need(&snap, 0, 0, &s, &err);
    assert_int_equal(-EBADMSG, rc);
    assert_null(s);
    rc = vcpud_snap_need(&snap, VCPUD_SNAP_TYPE_MAX, 0, &s, &err);
    assert_int_equal(-EBADMSG, rc);
    assert_string_equal("snapshot has no type 14 section", err.msg);
    free(buf);
}

static void test_writer_too_many_sections(void **state)
{
    struct vcpud_snap_writer w;
    struct vcpud_err err = {0};
    uint8_t body[4] = {1, 2, 3, 4};
    void *buf;
    size_t len;
    int rc;

    (void)state;
    vcpud_snap_writer_init(&w);
    for (uint32_t i = 0; i < VCPUD_SNAP_MAX_SECTIONS; i++)
        vcpud_snap_add(&w, VCPUD_SNAP_MPSTATE, body, sizeof(body));
    rc = vcpud_snap_finish(&w, &buf, &len, &err);
    assert_int_equal(0, rc);
    assert_int_equal(VCPUD_SNAP_MAX_SECTIONS,
                     vcpud_get_u32((uint8_t *)buf + 12));
    free(buf);

    for (uint32_t i = 0; i <= VCPUD_SNAP_MAX_SECTIONS; i++)
        vcpud_snap_add(&w, VCPUD_SNAP_MPSTATE, body, sizeof(body));
    assert_int_equal(-E2BIG, w.error);
    rc = vcpud_snap_finish(&w, &buf, &len, &err);
    assert_int_equal(-E2BIG, rc);
    assert_int_equal(-E2BIG, err.code);
    assert_true(err.msg[0] != '\0');
    assert_null(buf);
    assert_int_equal(0, len);
    assert_null(w.buf);
    vcpud_snap_writer_free(&w);
}

static void test_writer_size_limit(void **state)
{
    const uint32_t fits = VCPUD_SNAP_MAX_SIZE - VCPUD_SNAP_HEADER_SIZE - 8;
    struct vcpud_snap_writer w;
    struct vcpud_snap snap;
    struct vcpud_err err = {0};
    uint8_t *body = calloc(1, VCPUD_SNAP_MAX_SIZE + 1);
    void *buf;
    size_t len;

    (void)state;
    assert_non_null(body);
    /* The largest snapshot a reader accepts can be written. */
    vcpud_snap_writer_init(&w);
    vcpud_snap_add(&w, VCPUD_SNAP_XSAVE, body, fits);
    assert_int_equal(0, vcpud_snap_finish(&w, &buf, &len, &err));
    assert_int_equal(VCPUD_SNAP_MAX_SIZE, len);
    assert_int_equal(0, vcpud_snap_parse(buf, len, &snap, &err));
    assert_int_equal(fits, vcpud_snap_get(&snap, VCPUD_SNAP_XSAVE)->len);
    free(buf);

    vcpud_snap_add(&w, VCPUD_SNAP_XSAVE, body, fits + 1);
    assert_int_equal(-E2BIG, vcpud_snap_finish(&w, &buf, &len, &err));
    assert_true(err.msg[0] != '\0');
    assert_null(buf);

    vcpud_snap_add(&w, VCPUD_SNAP_XSAVE, body, VCPUD_SNAP_MAX_SIZE + 1);
    assert_int_equal(-E2BIG, vcpud_snap_finish(&w, &buf, &len, &err));

    /* Two halves that fit alone but not together. */
    vcpud_snap_add(&w, VCPUD_SNAP_XSAVE, body, VCPUD_SNAP_MAX_SIZE / 2);
    assert_int_equal(0, w.error);
    vcpud_snap_add(&w, VCPUD_SNAP_LAPIC, body, VCPUD_SNAP_MAX_SIZE / 2);
    assert_int_equal(-E2BIG, vcpud_snap_finish(&w, &buf, &len, &err));
    free(body);
}

/* The first failure wins and later sections cannot hide it. */
static void test_writer_error_sticky(void **state)
{
    struct vcpud_snap_writer w;
    struct vcpud_err err = {0};
    uint8_t body[8] = {0};
    void *buf;
    size_t len;

    (void)state;
    vcpud_snap_writer_init(&w);
    vcpud_snap_add(&w, VCPUD_SNAP_REGS, body, sizeof(body));
    w.error = -ENOMEM; /* as if realloc had failed */
    vcpud_snap_add(&w, VCPUD_SNAP_LAPIC, body, sizeof(body));
    assert_int_equal(1, w.nsections);
    assert_int_equal(-ENOMEM, vcpud_snap_finish(&w, &buf, &len, &err));
    assert_int_equal(-ENOMEM, err.code);
    assert_true(err.msg[0] != '\0');
    assert_null(buf);
    assert_null(w.buf);
    assert_int_equal(0, w.error);
}

static void test_writer_unknown_type(void **state)
{
    struct vcpud_snap_writer w;
    struct vcpud_err err = {0};
    void *buf;
    size_t len;

    (void)state;
    vcpud_snap_writer_init(&w);
    vcpud_snap_add(&w, 0, NULL, 0);
    assert_int_equal(-EINVAL, vcpud_snap_finish(&w, &buf, &len, &err));
    assert_true(err.msg[0] != '\0');
    vcpud_snap_add(&w, VCPUD_SNAP_TYPE_MAX, NULL, 0);
    assert_int_equal(-EINVAL, vcpud_snap_finish(&w, &buf, &len, &err));
}

static void test_writer_reusable(void **state)
{
    struct vcpud_snap_writer w;
    struct vcpud_snap snap;
    struct vcpud_err err = {0};
    uint32_t mp = 3;
    void *buf;
    size_t len;

    (void)state;
    vcpud_snap_writer_init(&w);
    vcpud_snap_add(&w, VCPUD_SNAP_MPSTATE, &mp, sizeof(mp));
    assert_int_equal(0, vcpud_snap_finish(&w, &buf, &len, &err));
    free(buf);
    assert_null(w.buf);
    assert_int_equal(0, w.nsections);
    vcpud_snap_writer_free(&w); /* harmless on an emptied writer */

    vcpud_snap_add(&w, VCPUD_SNAP_TSC_KHZ, &mp, sizeof(mp));
    assert_int_equal(0, vcpud_snap_finish(&w, &buf, &len, &err));
    assert_int_equal(0, vcpud_snap_parse(buf, len, &snap, &err));
    assert_int_equal(1, snap.nsections);
    assert_non_null(vcpud_snap_get(&snap, VCPUD_SNAP_TSC_KHZ));
    assert_null(vcpud_snap_get(&snap, VCPUD_SNAP_MPSTATE));
    free(buf);

    /* Dropped without finish: the sanitizers report a leak if any. */
    vcpud_snap_add(&w, VCPUD_SNAP_MPSTATE, &mp, sizeof(mp));
    vcpud_snap_writer_free(&w);
    assert_null(w.buf);
}

static void test_null_err_accepted(void **state)
{
    struct vcpud_snap snap;
    struct vcpud_snap_writer w;
    uint8_t junk[40] = {0};
    void *buf;
    size_t len;

    (void)state;
    assert_int_equal(-EBADMSG,
                     vcpud_snap_parse(junk, sizeof(junk), &snap, NULL));
    assert_int_equal(-EBADMSG,
                     vcpud_snap_need(&snap, VCPUD_SNAP_REGS, 144, NULL, NULL));
    vcpud_snap_writer_init(&w);
    vcpud_snap_add(&w, 0, NULL, 0);
    assert_int_equal(-EINVAL, vcpud_snap_finish(&w, &buf, &len, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_check_values),
        cmocka_unit_test(test_crc32_table_matches_definition),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_header_layout),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_no_sections),
        cmocka_unit_test(test_truncated_at_every_length),
        cmocka_unit_test(test_every_single_byte_change_rejected),
        cmocka_unit_test(test_trailing_bytes_rejected),
        cmocka_unit_test(test_oversize_rejected),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_bad_version),
        cmocka_unit_test(test_reserved_nonzero),
        cmocka_unit_test(test_payload_length_field_wrong),
        cmocka_unit_test(test_crc_mismatch),
        cmocka_unit_test(test_nsections_over_limit),
        cmocka_unit_test(test_nsections_mismatch),
        cmocka_unit_test(test_section_past_end),
        cmocka_unit_test(test_section_header_cut),
        cmocka_unit_test(test_section_len_shrunk),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_duplicate_type),
        cmocka_unit_test(test_nonzero_padding),
        cmocka_unit_test(test_need),
        cmocka_unit_test(test_writer_too_many_sections),
        cmocka_unit_test(test_writer_size_limit),
        cmocka_unit_test(test_writer_error_sticky),
        cmocka_unit_test(test_writer_unknown_type),
        cmocka_unit_test(test_writer_reusable),
        cmocka_unit_test(test_null_err_accepted),
    };

    return cmocka_run_group_tests_name("snapshot", tests, NULL, NULL);
}
