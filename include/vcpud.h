/* vcpud.h: the public API of the vcpud core, in one include. */
#ifndef VCPUD_H
#define VCPUD_H

#include "vcpud/backend.h"
#include "vcpud/error.h"
#include "vcpud/exit.h"
#include "vcpud/regs.h"
#include "vcpud/setup.h"
#include "vcpud/snapshot.h"
#include "vcpud/vcpu.h"
#include "vcpud/vm.h"

#endif
