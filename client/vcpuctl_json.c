/* vcpuctl_json.c: the JSON writer – escaping and commas. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vcpuctl_json.h"

/* Length of the well-formed UTF-8 sequence at (s) (at most n bytes), or 0
 * when it is not one: overlong forms, surrogates and code points past
 * U+10FFFF are refused as JSON parsers refuse them. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static void put_escaped(FILE *f, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else if (c == '\r') {
            fputs("\\r", f);
        } else if (c == '\t') {
            fputs("\\t", f);
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
        } else if (c >= 0x80) {
            size_t len = utf8_len(s + i, n - i);
            if (len) {
                fwrite(s + i, 1, len, f);
                i += len;
                continue;
            }
            /* Not UTF-8 (a raw guest byte, a file name): keep the line
             * valid and the byte's value visible. */
            fprintf(f, "\\u%04x", c);
        } else {
            fputc((int)c, f);
        }
        i++;
    }
    fputc('"', f);
}

/* The comma and key every member starts with. */
static void member(struct json_writer *w, const char *key)
{
    if (!w->first[w->depth])
        fputc(',', w->f);
    w->first[w->depth] = false;
    if (key) {
        put_escaped(w->f, key, strlen(key));
        fputc(':', w->f);
    }
}

static void push(struct json_writer *w, char open, char close)
{
    if (w->depth + 1 >= JSON_DEPTH_MAX)
        abort();
    fputc(open, w->f);
    w->depth++;
    w->first[w->depth] = true;
    w->close[w->depth] = close;
}

void json_begin(struct json_writer *w, FILE *f)
{
    w->f = f;
    w->depth = 0;
    w->first[0] = true;
    fputc('{', f);
}

void json_end(struct json_writer *w)
{
    while (w->depth > 0)
        json_close(w); /* a caller's slip still gives valid JSON */
    fputs("}\n", w->f);
    fflush(w->f);
}

void json_str(struct json_writer *w, const char *key, const char *s)
{
    json_strn(w, key, s, strlen(s));
}

void json_strn(struct json_writer *w, const char *key, const char *s,
               size_t len)
{
    member(w, key);
    put_escaped(w->f, s, len);
}

void json_u32(struct json_writer *w, const char *key, uint32_t v)
{
    member(w, key);
    fprintf(w->f, "%" PRIu32, v);
}

void json_bool(struct json_writer *w, const char *key, bool v)
{
    member(w, key);
    fputs(v ? "true" : "false", w->f);
}

void json_hex64(struct json_writer *w, const char *key, uint64_t v)
{
    member(w, key);
    fprintf(w->f, "\"0x%" PRIx64 "\"", v);
}

void json_bytes(struct json_writer *w, const char *key, const void *data,
                size_t len)
{
    const unsigned char *p = data;
    member(w, key);
    fputc('"', w->f);
    for (size_t i = 0; i < len; i++)
        fprintf(w->f, "%02x", p[i]);
    fputc('"', w->f);
}

void json_object(struct json_writer *w, const char *key)
{
    member(w, key);
    push(w, '{', '}');
}

void json_array(struct json_writer *w, const char *key)
{
    member(w, key);
    push(w, '[', ']');
}

void json_close(struct json_writer *w)
{
    if (w->depth == 0)
        abort();
    fputc(w->close[w->depth], w->f);
    w->depth--;
}
