/* pb_io.c: nanopb glue – owned-buffer encode/decode and blob callbacks. */
#include <errno.h>
#include <pb_decode.h>
#include <pb_encode.h>
#include <stdlib.h>
#include <string.h>

#include "pb_io.h"

int vcpud_pb_encode(const pb_msgdesc_t *desc, const void *msg, uint8_t **buf,
                    size_t *len, struct vcpud_err *err)
{
    size_t size;
    if (!pb_get_encoded_size(&size, desc, msg))
        return vcpud_err_set(err, -EINVAL, "cannot size the message");
    uint8_t *b = malloc(size ? size : 1);
    if (!b)
        return vcpud_err_set(err, -ENOMEM, "out of memory for a message");
    pb_ostream_t os = pb_ostream_from_buffer(b, size);
    if (!pb_encode(&os, desc, msg)) {
        free(b);
        return vcpud_err_set(err, -EINVAL, "cannot encode the message: %s",
                             PB_GET_ERROR(&os));
    }
    *buf = b;
    *len = os.bytes_written;
    return 0;
}

int vcpud_pb_decode(const pb_msgdesc_t *desc, const uint8_t *buf, size_t len,
                    void *msg, struct vcpud_err *err)
{
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&is, desc, msg))
        return vcpud_err_set(err, -EINVAL,
                             "malformed request (%s): check field bounds in "
                             "vcpud.proto",
                             PB_GET_ERROR(&is));
    return 0;
}

static bool blob_encode(pb_ostream_t *os, const pb_field_t *field,
                        void *const *arg)
{
    const struct vcpud_pb_blob *b = *arg;
    if (!b || !b->len)
        return true;
    return pb_encode_tag_for_field(os, field) &&
           pb_encode_string(os, b->data, b->len);
}

static bool blob_decode(pb_istream_t *is, const pb_field_t *field, void **arg)
{
    (void)field;
    struct vcpud_pb_blob *b = *arg;
    if (is->bytes_left > b->max) {
        b->too_big = true;
        PB_RETURN_ERROR(is, "bytes field over its bound");
    }
    free(b->data);
    b->len = 0;
    b->data = malloc(is->bytes_left ? is->bytes_left : 1);
    if (!b->data)
        PB_RETURN_ERROR(is, "out of memory");
    b->len = is->bytes_left;
    return pb_read(is, b->data, b->len);
}

void vcpud_pb_blob_encoder(pb_callback_t *cb, struct vcpud_pb_blob *blob)
{
    cb->funcs.encode = blob_encode;
    cb->arg = blob;
}

void vcpud_pb_blob_decoder(pb_callback_t *cb, struct vcpud_pb_blob *blob)
{
    cb->funcs.decode = blob_decode;
    cb->arg = blob;
}

void vcpud_pb_blob_free(struct vcpud_pb_blob *blob)
{
    free(blob->data);
    blob->data = NULL;
    blob->len = 0;
}
