/* snapshot.c: writes the vCPU snapshot container and checks it on restore. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vcpud/error.h"
#include "vcpud/snapshot.h"

/* Header field offsets; the layout is documented in snapshot.h. */
#define OFF_MAGIC 0
#define OFF_VERSION 8
#define OFF_NSECTIONS 12
#define OFF_PAYLOAD_LEN 16
#define OFF_CRC 24
#define OFF_RESERVED 28
#define MAGIC_LEN 8u
#define SECTION_HEADER_SIZE 8u
#define SECTION_ALIGN 8u
/* Enough for the small sections without a realloc; XSAVE alone then needs
 * one or two doublings. */
#define INITIAL_CAP 4096u

static const char *const type_names[VCPUD_SNAP_TYPE_MAX] = {
#define NAME_ENTRY(num, name, text) [num] = text,
    VCPUD_SNAP_TYPES(NAME_ENTRY)
#undef NAME_ENTRY
};

const char *vcpud_snap_type_name(uint32_t type)
{
    if (type >= VCPUD_SNAP_TYPE_MAX)
        return NULL;
    return type_names[type];
}

/* Messages must name even types this version does not know. */
#define LABEL_MAX 24

static const char *label(uint32_t type, char buf[LABEL_MAX])
{
    const char *name = vcpud_snap_type_name(type);

    if (name)
        return name;
    snprintf(buf, LABEL_MAX, "type %" PRIu32, type);
    return buf;
}

/* 64 bits so that a length near UINT32_MAX cannot wrap. */
static uint64_t padded(uint64_t len)
{
    return (len + SECTION_ALIGN - 1) & ~(uint64_t)(SECTION_ALIGN - 1);
}

void vcpud_snap_writer_init(struct vcpud_snap_writer *w)
{
    /* The header is reserved by position only; its memory comes with the
     * first section or in finish, so that init cannot fail. */
    *w = (struct vcpud_snap_writer){.len = VCPUD_SNAP_HEADER_SIZE};
}

void vcpud_snap_writer_free(struct vcpud_snap_writer *w)
{
    free(w->buf);
    vcpud_snap_writer_init(w);
}

/* Callers keep (need) within VCPUD_SNAP_MAX_SIZE, so doubling cannot
 * overflow. */
static int reserve(struct vcpud_snap_writer *w, size_t need)
{
    size_t cap = w->cap ? w->cap : INITIAL_CAP;
    uint8_t *p;

    if (need <= w->cap)
        return 0;
    while (cap < need)
        cap *= 2;
    p = realloc(w->buf, cap);
    if (!p)
        return -ENOMEM;
    w->buf = p;
    w->cap = cap;
    return 0;
}

void vcpud_snap_add(struct vcpud_snap_writer *w, uint32_t type,
                    const void *body, uint32_t len)
{
    uint64_t span = padded(len);
    uint8_t *p;

    if (w->error)
        return;
    /* Refuse here what every reader would refuse, so that a bad snapshot
     * fails when taken rather than when someone needs it restored. */
    if (!vcpud_snap_type_name(type)) {
        w->error = -EINVAL;
        return;
    }
    if (w->nsections >= VCPUD_SNAP_MAX_SECTIONS ||
        (uint64_t)w->len + SECTION_HEADER_SIZE + span > VCPUD_SNAP_MAX_SIZE) {
        w->error = -E2BIG;
        return;
    }
    if (reserve(w, w->len + SECTION_HEADER_SIZE + (size_t)span) < 0) {
        w->error = -ENOMEM;
        return;
    }
    p = w->buf + w->len;
    vcpud_put_u32(p, type);
    vcpud_put_u32(p + 4, len);
    p += SECTION_HEADER_SIZE;
    if (len)
        memcpy(p, body, len);
    memset(p + len, 0, (size_t)span - len);
    w->len += SECTION_HEADER_SIZE + (size_t)span;
    w->nsections++;
}

/* The writer keeps only an errno, so say what it can mean. */
static int writer_failure(int code, uint32_t nsections, size_t len,
                          struct vcpud_err *err)
{
    switch (code) {
    case -ENOMEM:
        return vcpud_err_set(err, code,
                             "out of memory writing the snapshot after %" PRIu32
                             " sections, %zu bytes",
                             nsections, len);
    case -E2BIG:
        return vcpud_err_set(err, code,
                             "snapshot exceeds its limits of %u sections and "
                             "%u bytes: a section did not fit after %" PRIu32
                             " sections, %zu bytes",
                             VCPUD_SNAP_MAX_SECTIONS, VCPUD_SNAP_MAX_SIZE,
                             nsections, len);
    case -EINVAL:
        return vcpud_err_set(err, code,
                             "snapshot writer was given a section type "
                             "outside 1..%d after %" PRIu32 " sections",
                             VCPUD_SNAP_TYPE_MAX - 1, nsections);
    default:
        return vcpud_err_set(err, code,
                             "snapshot writer failed with error %d after "
                             "%" PRIu32 " sections",
                             code, nsections);
    }
}

int vcpud_snap_finish(struct vcpud_snap_writer *w, void **buf, size_t *len,
                      struct vcpud_err *err)
{
    int rc = w->error;
    uint8_t *p;

    *buf = NULL;
    *len = 0;
    /* Only a snapshot without sections has no memory yet. */
    if (!rc && reserve(w, w->len) < 0)
        rc = -ENOMEM;
    if (rc) {
        uint32_t nsections = w->nsections;
        size_t written = w->len;

        vcpud_snap_writer_free(w);
        return writer_failure(rc, nsections, written, err);
    }
    p = w->buf;
    memcpy(p + OFF_MAGIC, VCPUD_SNAP_MAGIC, MAGIC_LEN);
    vcpud_put_u32(p + OFF_VERSION, VCPUD_SNAP_VERSION);
    vcpud_put_u32(p + OFF_NSECTIONS, w->nsections);
    vcpud_put_u64(p + OFF_PAYLOAD_LEN, w->len - VCPUD_SNAP_HEADER_SIZE);
    vcpud_put_u32(p + OFF_CRC, vcpud_crc32(p + VCPUD_SNAP_HEADER_SIZE,
                                           w->len - VCPUD_SNAP_HEADER_SIZE));
    vcpud_put_u32(p + OFF_RESERVED, 0);
    *buf = p;
    *len = w->len;
    vcpud_snap_writer_init(w);
    return 0;
}

/* A wrong magic is often a recognisable file, so show it printably. */
#define SHOWN_MAX (MAGIC_LEN * 4 + 1)

static const char *show_bytes(const uint8_t *p, size_t n, char out[SHOWN_MAX])
{
    size_t o = 0;

    for (size_t i = 0; i < n && i < MAGIC_LEN; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
            out[o++] = (char)p[i];
        else
            o += (size_t)snprintf(out + o, SHOWN_MAX - o, "\\x%02x", p[i]);
    }
    out[o] = '\0';
    return out;
}

static int check_header(const uint8_t *p, size_t len, struct vcpud_err *err)
{
    uint32_t version, reserved, nsections, want_crc, got_crc;
    uint64_t payload;
    char shown[SHOWN_MAX];

    if (len < VCPUD_SNAP_HEADER_SIZE)
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot truncated: %zu bytes, but its header "
                             "alone is %u",
                             len, VCPUD_SNAP_HEADER_SIZE);
    if (len > VCPUD_SNAP_MAX_SIZE)
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot is %zu bytes, more than the limit of %u",
                             len, VCPUD_SNAP_MAX_SIZE);
    if (memcmp(p + OFF_MAGIC, VCPUD_SNAP_MAGIC, MAGIC_LEN) != 0)
        return vcpud_err_set(err, -EBADMSG,
                             "not a vcpud snapshot: it starts with \"%s\", "
                             "not \"%s\"",
                             show_bytes(p + OFF_MAGIC, MAGIC_LEN, shown),
                             VCPUD_SNAP_MAGIC);
    version = vcpud_get_u32(p + OFF_VERSION);
    if (version != VCPUD_SNAP_VERSION)
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot format version %" PRIu32
                             " is not supported; this vcpud reads version %u",
                             version, VCPUD_SNAP_VERSION);
    reserved = vcpud_get_u32(p + OFF_RESERVED);
    if (reserved != 0)
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot header reserved field is 0x%08" PRIx32
                             ", must be 0",
                             reserved);
    payload = vcpud_get_u64(p + OFF_PAYLOAD_LEN);
    if (payload > len - VCPUD_SNAP_HEADER_SIZE)
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot truncated: header announces %" PRIu64
                             " payload bytes, only %zu follow it",
                             payload, len - VCPUD_SNAP_HEADER_SIZE);
    if (payload < len - VCPUD_SNAP_HEADER_SIZE)
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot has %zu bytes after its header, which "
                             "announces %" PRIu64 " (trailing data?)",
                             len - VCPUD_SNAP_HEADER_SIZE, payload);
    want_crc = vcpud_get_u32(p + OFF_CRC);
    got_crc =
        vcpud_crc32(p + VCPUD_SNAP_HEADER_SIZE, len - VCPUD_SNAP_HEADER_SIZE);
    if (want_crc != got_crc)
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot corrupted: payload CRC-32 is "
                             "0x%08" PRIx32 ", header says 0x%08" PRIx32,
                             got_crc, want_crc);
    nsections = vcpud_get_u32(p + OFF_NSECTIONS);
    if (nsections > VCPUD_SNAP_MAX_SECTIONS)
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot header claims %" PRIu32
                             " sections, at most %u are allowed",
                             nsections, VCPUD_SNAP_MAX_SECTIONS);
    return 0;
}

/* The header has been checked, so the payload length matches (len). */
static int index_sections(const uint8_t *p, size_t len, struct vcpud_snap *snap,
                          struct vcpud_err *err)
{
    uint32_t declared = vcpud_get_u32(p + OFF_NSECTIONS);
    uint32_t seen_at[VCPUD_SNAP_TYPE_MAX] = {0};
    size_t off = VCPUD_SNAP_HEADER_SIZE;
    uint32_t i;
    char l1[LABEL_MAX];

    /* Each type may occur once, so this runs fewer than
     * VCPUD_SNAP_TYPE_MAX times whatever the input. */
    for (i = 0; off < len; i++) {
        size_t left = len - off, body;
        uint32_t type, slen;
        uint64_t span;

        if (left < SECTION_HEADER_SIZE)
            return vcpud_err_set(err, -EBADMSG,
                                 "snapshot truncated: section %" PRIu32
                                 " header needs %u bytes at offset %zu, %zu "
                                 "left",
                                 i, SECTION_HEADER_SIZE, off, left);
        type = vcpud_get_u32(p + off);
        slen = vcpud_get_u32(p + off + 4);
        span = padded(slen);
        body = off + SECTION_HEADER_SIZE;
        left -= SECTION_HEADER_SIZE;
        if (span > left)
            return vcpud_err_set(err, -EBADMSG,
                                 "snapshot truncated: section %" PRIu32
                                 " (%s) needs %" PRIu64
                                 " bytes at offset %zu, %zu left",
                                 i, label(type, l1), span, body, left);
        if (!vcpud_snap_type_name(type))
            return vcpud_err_set(err, -EBADMSG,
                                 "snapshot section %" PRIu32
                                 " at offset %zu has unknown type %" PRIu32
                                 " (this vcpud knows 1..%d)",
                                 i, off, type, VCPUD_SNAP_TYPE_MAX - 1);
        if (snap->sec[type].type)
            return vcpud_err_set(err, -EBADMSG,
                                 "snapshot has two %s sections: %" PRIu32
                                 " and %" PRIu32 " (at offset %zu)",
                                 label(type, l1), seen_at[type], i, off);
        for (size_t k = body + slen; k < body + (size_t)span; k++) {
            if (p[k])
                return vcpud_err_set(err, -EBADMSG,
                                     "snapshot section %" PRIu32
                                     " (%s) has padding byte 0x%02x at "
                                     "offset %zu, must be 0",
                                     i, label(type, l1), p[k], k);
        }
        snap->sec[type] = (struct vcpud_snap_section){
            .type = type, .len = slen, .body = p + body};
        seen_at[type] = i;
        off = body + (size_t)span;
    }
    if (i != declared)
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot header says %" PRIu32
                             " sections, the payload holds %" PRIu32,
                             declared, i);
    snap->nsections = i;
    return 0;
}

int vcpud_snap_parse(const void *buf, size_t len, struct vcpud_snap *snap,
                     struct vcpud_err *err)
{
    int rc;

    memset(snap, 0, sizeof(*snap));
    rc = check_header(buf, len, err);
    if (!rc)
        rc = index_sections(buf, len, snap, err);
    /* Nothing half-indexed may be mistaken for a snapshot. */
    if (rc)
        memset(snap, 0, sizeof(*snap));
    return rc;
}

const struct vcpud_snap_section *vcpud_snap_get(const struct vcpud_snap *snap,
                                                uint32_t type)
{
    /* An absent section is all zeroes, type included. */
    if (type == 0 || type >= VCPUD_SNAP_TYPE_MAX ||
        snap->sec[type].type != type)
        return NULL;
    return &snap->sec[type];
}

int vcpud_snap_need(const struct vcpud_snap *snap, uint32_t type, uint32_t len,
                    const struct vcpud_snap_section **out,
                    struct vcpud_err *err)
{
    const struct vcpud_snap_section *s = vcpud_snap_get(snap, type);
    char l1[LABEL_MAX];

    if (out)
        *out = NULL;
    if (!s)
        return vcpud_err_set(err, -EBADMSG, "snapshot has no %s section",
                             label(type, l1));
    if (s->len != len)
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot %s section is %" PRIu32
                             " bytes, this vcpud expects %" PRIu32,
                             label(type, l1), s->len, len);
    if (out)
        *out = s;
    return 0;
}
