/* vcpuctl_json.h: a small streaming JSON writer for vcpuctl's one-object-
 * per-line output.
 *
 * Conventions the callers keep (docs/vcpuctl.md): 32-bit and smaller
 * integers are JSON numbers; every 64-bit value is a string "0x..." so no
 * parser loses precision; byte strings are hex without a prefix.
 */
#ifndef VCPUCTL_JSON_H
#define VCPUCTL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH_MAX 8

/* Writes to (f) as members are added; nothing is buffered here, so a
 * writer needs no cleanup. Nesting deeper than JSON_DEPTH_MAX is a
 * programming error and aborts. */
struct json_writer {
    FILE *f;
    int depth;
    bool first[JSON_DEPTH_MAX]; /* no member written yet at this level */
    char close[JSON_DEPTH_MAX]; /* what ends the container at this level */
};

/* Open the top-level object on (f). */
void json_begin(struct json_writer *w, FILE *f);
/* Close it, end the line and flush, so each object reaches a reader
 * (a pipe) whole and at once. */
void json_end(struct json_writer *w);

/* Members. (key) is the member name inside an object and must be NULL
 * inside an array. Strings are escaped; bytes that are not UTF-8 come out
 * as \u00XX so the line is always valid JSON. */
void json_str(struct json_writer *w, const char *key, const char *s);
void json_strn(struct json_writer *w, const char *key, const char *s,
               size_t len);
void json_u32(struct json_writer *w, const char *key, uint32_t v);
void json_bool(struct json_writer *w, const char *key, bool v);
void json_hex64(struct json_writer *w, const char *key, uint64_t v);
void json_bytes(struct json_writer *w, const char *key, const void *data,
                size_t len);

/* Nested containers, closed by json_close(). */
void json_object(struct json_writer *w, const char *key);
void json_array(struct json_writer *w, const char *key);
void json_close(struct json_writer *w);

#endif
