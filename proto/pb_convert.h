/* pb_convert.h: between the contract's messages and the core's types. The
 * server and the C client both use these, so both sides agree on every
 * field. */
#ifndef VCPUD_PB_CONVERT_H
#define VCPUD_PB_CONVERT_H

#include "vcpud/error.h"
#include "vcpud/exit.h"
#include "vcpud/regs.h"
#include "vcpud/v1/vcpud.pb.h"

void vcpud_pb_from_regs(vcpud_v1_Regs *out, const struct vcpud_regs *in);
void vcpud_pb_to_regs(struct vcpud_regs *out, const vcpud_v1_Regs *in);

void vcpud_pb_from_sregs(vcpud_v1_SpecialRegs *out,
                         const struct vcpud_sregs *in);
/* -EINVAL naming the field when a value does not fit its bits. */
int vcpud_pb_to_sregs(struct vcpud_sregs *out, const vcpud_v1_SpecialRegs *in,
                      struct vcpud_err *err);

void vcpud_pb_from_exit(vcpud_v1_Exit *out, const struct vcpud_exit *in);
/* -EINVAL when the message is not an exit vcpud can produce. Posted
 * writes go to (posted) (room for posted_cap; -E2BIG when more came) and
 * out->posted points there. */
int vcpud_pb_to_exit(struct vcpud_exit *out, const vcpud_v1_Exit *in,
                     struct vcpud_posted_write *posted, uint32_t posted_cap,
                     struct vcpud_err *err);

#endif
