/* test_pending.c: the rules for exits that wait for the controller. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "pending.h"

static struct vcpud_exit io_in(uint16_t port, uint8_t size, uint32_t count)
{
    struct vcpud_exit e = {.kind = VCPUD_EXIT_IO_IN};
    e.u.io.port = port;
    e.u.io.size = size;
    e.u.io.count = count;
    return e;
}

static struct vcpud_exit mmio_read(uint64_t addr, uint8_t size)
{
    struct vcpud_exit e = {.kind = VCPUD_EXIT_MMIO_READ};
    e.u.mmio.addr = addr;
    e.u.mmio.size = size;
    return e;
}

static void run_refused_until_result(void **state)
{
    (void)state;
    struct vcpud_pending p = {0};
    struct vcpud_err err = {0};
    struct vcpud_exit e = io_in(0x60, 1, 1);
    vcpud__pending_from_exit(&p, &e);
    assert_int_equal(-EPROTO, vcpud__pending_check_run(&p, 3, &err));
    assert_non_null(strstr(err.msg, "set_io_result"));
    assert_non_null(strstr(err.msg, "0x60"));
    uint64_t v = 0x42;
    assert_int_equal(0, vcpud__pending_set_io(&p, &v, 1, &err));
    assert_int_equal(0, vcpud__pending_check_run(&p, 3, &err));
    assert_int_equal(0x42, p.data[0]);
}

static void exits_without_result_leave_nothing_pending(void **state)
{
    (void)state;
    struct vcpud_pending p = {0};
    struct vcpud_exit e = {.kind = VCPUD_EXIT_IO_OUT};
    vcpud__pending_from_exit(&p, &e);
    assert_int_equal(VCPUD_EXIT_NONE, p.kind);
    assert_int_equal(0, vcpud__pending_check_run(&p, 0, NULL));
    e.kind = VCPUD_EXIT_HLT;
    vcpud__pending_from_exit(&p, &e);
    assert_int_equal(VCPUD_EXIT_NONE, p.kind);
}

static void result_of_wrong_kind_is_refused(void **state)
{
    (void)state;
    struct vcpud_pending p = {0};
    struct vcpud_err err = {0};
    uint64_t v = 1;
    assert_int_equal(-EPROTO, vcpud__pending_set_io(&p, &v, 1, &err));
    assert_int_equal(-EPROTO, vcpud__pending_set_mmio(&p, 1, &err));
    assert_non_null(strstr(err.msg, "nothing"));

    struct vcpud_exit e = mmio_read(0xd0000000, 4);
    vcpud__pending_from_exit(&p, &e);
    assert_int_equal(-EPROTO, vcpud__pending_set_io(&p, &v, 1, &err));
    assert_non_null(strstr(err.msg, "mmio-read"));

    e = io_in(0x3f8, 1, 1);
    vcpud__pending_from_exit(&p, &e);
    assert_int_equal(-EPROTO, vcpud__pending_set_mmio(&p, 1, &err));
}

static void result_of_wrong_size_is_refused(void **state)
{
    (void)state;
    struct vcpud_pending p = {0};
    struct vcpud_err err = {0};
    struct vcpud_exit e = io_in(0x60, 2, 1);
    vcpud__pending_from_exit(&p, &e);
    uint64_t big = 0x10000;
    assert_int_equal(-EINVAL, vcpud__pending_set_io(&p, &big, 1, &err));
    assert_false(p.have_result);
    uint64_t two[2] = {1, 2};
    assert_int_equal(-EINVAL, vcpud__pending_set_io(&p, two, 2, &err));
    assert_non_null(strstr(err.msg, "wants 1 value"));

    e = mmio_read(0x1000, 1);
    vcpud__pending_from_exit(&p, &e);
    assert_int_equal(-EINVAL, vcpud__pending_set_mmio(&p, 0x100, &err));
    assert_int_equal(0, vcpud__pending_set_mmio(&p, 0xff, &err));
    e = mmio_read(0x1000, 8);
    vcpud__pending_from_exit(&p, &e);
    assert_int_equal(0, vcpud__pending_set_mmio(&p, UINT64_MAX, &err));
}

static void string_io_packs_every_element(void **state)
{
    (void)state;
    struct vcpud_pending p = {0};
    struct vcpud_exit e = io_in(0x1f0, 2, 3);
    vcpud__pending_from_exit(&p, &e);
    uint64_t v[3] = {0x1122, 0x3344, 0x5566};
    assert_int_equal(0, vcpud__pending_set_io(&p, v, 3, NULL));
    const uint8_t want[6] = {0x22, 0x11, 0x44, 0x33, 0x66, 0x55};
    assert_int_equal(6, vcpud__pending_data_len(&p));
    assert_memory_equal(want, p.data, 6);
}

static void replay_matches_only_the_same_access(void **state)
{
    (void)state;
    struct vcpud_pending p = {0};
    struct vcpud_exit e = io_in(0x60, 1, 4);
    vcpud__pending_from_exit(&p, &e);
    assert_true(vcpud__pending_matches(&p, &e));
    struct vcpud_exit other = io_in(0x61, 1, 4);
    assert_false(vcpud__pending_matches(&p, &other));
    other = io_in(0x60, 1, 3);
    assert_false(vcpud__pending_matches(&p, &other));
    other = mmio_read(0x60, 1);
    assert_false(vcpud__pending_matches(&p, &other));
}

static void encoding_round_trips(void **state)
{
    (void)state;
    static uint8_t buf[VCPUD_PENDING_SECTION_FIXED + VCPUD_IO_DATA_MAX];
    struct vcpud_pending p = {0}, q;
    struct vcpud_exit e = io_in(0x1f0, 4, 2);
    vcpud__pending_from_exit(&p, &e);
    uint64_t v[2] = {0xdeadbeef, 0x01020304};
    assert_int_equal(0, vcpud__pending_set_io(&p, v, 2, NULL));
    uint32_t n = vcpud__pending_encode(&p, buf);
    assert_int_equal(VCPUD_PENDING_SECTION_FIXED + 8, n);
    memset(&q, 0xa5, sizeof(q));
    assert_int_equal(0, vcpud__pending_decode(&q, buf, n, NULL));
    assert_int_equal(VCPUD_EXIT_IO_IN, q.kind);
    assert_int_equal(0x1f0, q.port);
    assert_int_equal(2, q.count);
    assert_true(q.have_result);
    assert_true(q.replay);
    assert_memory_equal(p.data, q.data, 8);

    vcpud__pending_clear(&p);
    n = vcpud__pending_encode(&p, buf);
    assert_int_equal(0, vcpud__pending_decode(&q, buf, n, NULL));
    assert_int_equal(VCPUD_EXIT_NONE, q.kind);
    assert_false(q.replay);
}

static void corrupt_sections_are_refused(void **state)
{
    (void)state;
    static uint8_t buf[VCPUD_PENDING_SECTION_FIXED + VCPUD_IO_DATA_MAX];
    struct vcpud_pending p = {0}, q = {0};
    struct vcpud_err err = {0};
    struct vcpud_exit e = mmio_read(0xfee00000, 4);
    vcpud__pending_from_exit(&p, &e);
    uint32_t n = vcpud__pending_encode(&p, buf);

    assert_int_equal(-EBADMSG, vcpud__pending_decode(&q, buf, n - 1, &err));
    assert_int_equal(-EBADMSG, vcpud__pending_decode(&q, buf, n + 1, &err));
    buf[4] = 9; /* size 9 */
    assert_int_equal(-EBADMSG, vcpud__pending_decode(&q, buf, n, &err));
    assert_non_null(strstr(err.msg, "pending"));
    buf[4] = 4;
    buf[0] = VCPUD_EXIT_HLT;
    assert_int_equal(-EBADMSG, vcpud__pending_decode(&q, buf, n, &err));
    buf[0] = VCPUD_EXIT_MMIO_READ;
    buf[24] = 1;     /* claims a result */
    buf[32 + 4] = 1; /* wider than 4 bytes */
    assert_int_equal(-EBADMSG, vcpud__pending_decode(&q, buf, n, &err));
    assert_int_equal(VCPUD_EXIT_NONE, q.kind); /* untouched */

    e = io_in(0x60, 1, 1);
    vcpud__pending_from_exit(&p, &e);
    n = vcpud__pending_encode(&p, buf);
    buf[8] = 0; /* count 0 */
    assert_int_equal(-EBADMSG, vcpud__pending_decode(&q, buf, n, &err));
    buf[8] = 0xff;
    buf[9] = 0xff; /* count * size beyond a page */
    assert_int_equal(-EBADMSG, vcpud__pending_decode(&q, buf, n, &err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(run_refused_until_result),
        cmocka_unit_test(exits_without_result_leave_nothing_pending),
        cmocka_unit_test(result_of_wrong_kind_is_refused),
        cmocka_unit_test(result_of_wrong_size_is_refused),
        cmocka_unit_test(string_io_packs_every_element),
        cmocka_unit_test(replay_matches_only_the_same_access),
        cmocka_unit_test(encoding_round_trips),
        cmocka_unit_test(corrupt_sections_are_refused),
    };
    return cmocka_run_group_tests_name("pending", tests, NULL, NULL);
}
