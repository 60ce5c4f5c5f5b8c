/* options.c: parsing vcpud's command line, with limits that default to
 * what a 2-core, 24 GiB lab machine can carry. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

static const char usage[] =
    "usage: vcpud [options]\n"
    "Host KVM vCPUs for remote controllers over gRPC (vcpud.v1.Vcpud).\n"
    "\n"
    "  --listen ADDR          127.0.0.1:PORT, [::1]:PORT or unix:PATH;\n"
    "                         repeatable (default 127.0.0.1:50051)\n"
    "  --backend NAME         kvm or auto (default auto)\n"
    "  --token-file PATH      lines of \"TOKEN TENANT\"; without it every\n"
    "                         caller is one tenant (keep such a server on\n"
    "                         loopback or a unix socket)\n"
    "  --http HOST:PORT       serve /healthz and /metrics (port 0: a free\n"
    "                         one, named in the log)\n"
    "  --max-vms N            VMs in total (default 64)\n"
    "  --max-vcpus-per-vm N   (default 8, at most 64)\n"
    "  --max-mem-per-vm SIZE  guest RAM per VM (default 4G)\n"
    "  --max-mem-total SIZE   guest RAM in total (default 16G)\n"
    "  --max-message SIZE     largest request accepted (default 4M)\n"
    "  --cq-threads N         gRPC completion-queue threads (default 2)\n"
    "  --keepalive-ms N       ping idle controllers (default 2000)\n"
    "  --keepalive-timeout-ms N  drop one that has not answered a ping\n"
    "                         by then (default 5000)\n"
    "  --grace-ms N           on SIGTERM, time for calls to finish (2000)\n"
    "  --help\n"
    "SIZE takes K, M or G.\n";

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return -1;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    else if (*end)
        return -1;
    if (shift && end[1])
        return -1;
    if (v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    return parse_size(s, out) < 0 || *out > max || strpbrk(s, "KkMmGg")
               ? -1
               : 0;
}

int options_parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){
        .backend = "auto",
        .lim = {.max_vms = 64,
                .max_vcpus_per_vm = 8,
                .max_mem_per_vm = 4ull << 30,
                .max_mem_total = 16ull << 30},
        .max_message = 4u << 20,
        .cq_threads = 2,
        .keepalive_ms = 2000,
        .keepalive_timeout_ms = 5000,
        .grace_ms = 2000,
    };
    enum {
        O_LISTEN = 256, O_BACKEND, O_TOKENS, O_HTTP, O_VMS, O_VCPUS, O_MEMVM,
        O_MEMTOTAL, O_MSG, O_CQ, O_KEEPALIVE, O_KEEPALIVE_TIMEOUT, O_GRACE,
        O_HELP
    };
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"backend", required_argument, NULL, O_BACKEND},
        {"token-file", required_argument, NULL, O_TOKENS},
        {"http", required_argument, NULL, O_HTTP},
        {"max-vms", required_argument, NULL, O_VMS},
        {"max-vcpus-per-vm", required_argument, NULL, O_VCPUS},
        {"max-mem-per-vm", required_argument, NULL, O_MEMVM},
        {"max-mem-total", required_argument, NULL, O_MEMTOTAL},
        {"max-message", required_argument, NULL, O_MSG},
        {"cq-threads", required_argument, NULL, O_CQ},
        {"keepalive-ms", required_argument, NULL, O_KEEPALIVE},
        {"keepalive-timeout-ms", required_argument, NULL, O_KEEPALIVE_TIMEOUT},
        {"grace-ms", required_argument, NULL, O_GRACE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        const char *bad = NULL;
        switch (c) {
        case O_LISTEN:
            if (o->nlisten == MAX_LISTEN)
                bad = "at most 8 --listen addresses";
            else
                o->listen[o->nlisten++] = optarg;
            break;
        case O_BACKEND:
            o->backend = optarg;
            break;
        case O_TOKENS:
            o->token_file = optarg;
            break;
        case O_HTTP:
            o->http = optarg;
            break;
        case O_VMS:
            if (parse_uint(optarg, 100000, &v) < 0 || v == 0)
                bad = "--max-vms takes 1..100000";
            o->lim.max_vms = (uint32_t)v;
            break;
        case O_VCPUS:
            if (parse_uint(optarg, 64, &v) < 0 || v == 0)
                bad = "--max-vcpus-per-vm takes 1..64";
            o->lim.max_vcpus_per_vm = (uint32_t)v;
            break;
        case O_MEMVM:
            if (parse_size(optarg, &o->lim.max_mem_per_vm) < 0)
                bad = "--max-mem-per-vm takes a size like 512M";
            break;
        case O_MEMTOTAL:
            if (parse_size(optarg, &o->lim.max_mem_total) < 0)
                bad = "--max-mem-total takes a size like 16G";
            break;
        case O_MSG:
            if (parse_size(optarg, &v) < 0 || v < (64u << 10) ||
                v > (64u << 20))
                bad = "--max-message takes 64K..64M";
            o->max_message = (size_t)v;
            break;
        case O_CQ:
            if (parse_uint(optarg, 16, &v) < 0 || v == 0)
                bad = "--cq-threads takes 1..16";
            o->cq_threads = (int)v;
            break;
        case O_KEEPALIVE:
            if (parse_uint(optarg, 3600000, &v) < 0 || v < 100)
                bad = "--keepalive-ms takes 100..3600000";
            o->keepalive_ms = (int)v;
            break;
        case O_KEEPALIVE_TIMEOUT:
            if (parse_uint(optarg, 3600000, &v) < 0 || v < 100)
                bad = "--keepalive-timeout-ms takes 100..3600000";
            o->keepalive_timeout_ms = (int)v;
            break;
        case O_GRACE:
            if (parse_uint(optarg, 600000, &v) < 0)
                bad = "--grace-ms takes 0..600000";
            o->grace_ms = (int)v;
            break;
        case O_HELP:
            fputs(usage, stdout);
            return 1;
        default:
            bad = "unknown option";
            break;
        }
        if (bad) {
            fprintf(stderr, "vcpud: %s\n%s", bad, usage);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vcpud: unexpected argument '%s'\n%s", argv[optind],
                usage);
        return -1;
    }
    if (o->nlisten == 0)
        o->listen[o->nlisten++] = "127.0.0.1:50051";
    return 0;
}
