/* test_status.c: every core error class lands on its documented gRPC
 * status, and the token file is read as documented. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "status.h"

static void every_class_has_its_status(void **state)
{
    (void)state;
    static const struct {
        int err;
        grpc_status_code want;
    } cases[] = {
        {0, GRPC_STATUS_OK},
        {-EINVAL, GRPC_STATUS_INVALID_ARGUMENT},
        {-EBADMSG, GRPC_STATUS_INVALID_ARGUMENT},
        {-ERANGE, GRPC_STATUS_INVALID_ARGUMENT},
        {-E2BIG, GRPC_STATUS_INVALID_ARGUMENT},
        {-ENOENT, GRPC_STATUS_NOT_FOUND},
        {-EEXIST, GRPC_STATUS_ALREADY_EXISTS},
        {-EBUSY, GRPC_STATUS_FAILED_PRECONDITION},
        {-EPROTO, GRPC_STATUS_FAILED_PRECONDITION},
        {-ENOTSUP, GRPC_STATUS_FAILED_PRECONDITION},
        {-ENOSPC, GRPC_STATUS_RESOURCE_EXHAUSTED},
        {-ENOMEM, GRPC_STATUS_RESOURCE_EXHAUSTED},
        {-EMFILE, GRPC_STATUS_RESOURCE_EXHAUSTED},
        {-ENODEV, GRPC_STATUS_UNAVAILABLE},
        {-EACCES, GRPC_STATUS_UNAVAILABLE},
        {-EIO, GRPC_STATUS_INTERNAL},
        {-EFAULT, GRPC_STATUS_INTERNAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (status_from_errno(cases[i].err) != cases[i].want)
            fail_msg("errno %d maps to %d, want %d", cases[i].err,
                     status_from_errno(cases[i].err), cases[i].want);
    }
}

static void token_file_names_tenants(void **state)
{
    (void)state;
    char path[] = "/tmp/vcpud-tokens-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "# lab tokens\n"
                        "0123456789abcdef0123 alice\n"
                        "\n"
                        "fedcba9876543210fedc bob  # second\n";
    assert_int_equal(sizeof(text) - 1, write(fd, text, sizeof(text) - 1));
    close(fd);
    struct auth *a;
    char errbuf[256];
    assert_int_equal(0, auth_load(path, &a, errbuf, sizeof(errbuf)));
    assert_string_equal("alice",
                        auth_tenant(a, "Bearer 0123456789abcdef0123"));
    assert_string_equal("bob", auth_tenant(a, "Bearer fedcba9876543210fedc"));
    assert_null(auth_tenant(a, "Bearer 0123456789abcdef012"));
    assert_null(auth_tenant(a, "0123456789abcdef0123"));
    assert_null(auth_tenant(a, NULL));
    auth_free(a);

    fd = open(path, O_WRONLY | O_TRUNC);
    const char bad[] = "short alice\n";
    assert_int_equal(sizeof(bad) - 1, write(fd, bad, sizeof(bad) - 1));
    close(fd);
    assert_int_equal(-EINVAL, auth_load(path, &a, errbuf, sizeof(errbuf)));
    assert_non_null(strstr(errbuf, ":1:"));
    unlink(path);

    assert_int_equal(0, auth_load(NULL, &a, errbuf, sizeof(errbuf)));
    assert_string_equal("default", auth_tenant(a, NULL));
    auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_class_has_its_status),
        cmocka_unit_test(token_file_names_tenants),
    };
    return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
