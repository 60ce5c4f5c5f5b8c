/* pb_io.h: nanopb encoding and decoding into owned buffers, and the
 * callbacks for the one field too large for a fixed struct (snapshots). */
#ifndef VCPUD_PB_IO_H
#define VCPUD_PB_IO_H

#include <pb.h>
#include <stddef.h>
#include <stdint.h>

#include "vcpud/error.h"

/*
 * Encode (msg) of type (desc). On success *buf is malloc'd (caller frees)
 * and *len its length. -ENOMEM or -EINVAL (a field over its bound).
 */
int vcpud_pb_encode(const pb_msgdesc_t *desc, const void *msg, uint8_t **buf,
                    size_t *len, struct vcpud_err *err);

/* Decode (len) bytes into (msg), which the caller initialised (callbacks
 * set). -EINVAL with nanopb's reason for malformed or over-bound input. */
int vcpud_pb_decode(const pb_msgdesc_t *desc, const uint8_t *buf, size_t len,
                    void *msg, struct vcpud_err *err);

/* A byte string carried through a FT_CALLBACK field. For decoding, (max)
 * bounds what is accepted; (data) is then malloc'd and owned by the blob. */
struct vcpud_pb_blob {
    uint8_t *data;
    size_t len;
    size_t max;
    bool too_big;
};

/* Point (cb) at (blob) for encoding / decoding a bytes field. */
void vcpud_pb_blob_encoder(pb_callback_t *cb, struct vcpud_pb_blob *blob);
void vcpud_pb_blob_decoder(pb_callback_t *cb, struct vcpud_pb_blob *blob);
void vcpud_pb_blob_free(struct vcpud_pb_blob *blob);

#endif
