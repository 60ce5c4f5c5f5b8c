/* output.c: the rows of one run, their ratios, and printing them as a
 * table or as JSON lines. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define MAX_ROWS 64

static struct bench_row rows[MAX_ROWS];
static size_t nrows;
static const char *only;  /* comma-separated groups and row names */
static const char *group; /* the group running now */

static bool listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p += len + (p[len] == ',');
    }
    return false;
}

void bench_rows_only(const char *list)
{
    only = list;
}

bool bench_rows_group(const char *name, bool is_group(const char *))
{
    group = name;
    if (!only || listed(only, name))
        return true;
    /* A row name in the list: run every group, keep only that row. */
    for (const char *p = only; *p;) {
        size_t len = strcspn(p, ",");
        char item[BENCH_NAME_MAX];
        snprintf(item, sizeof(item), "%.*s", (int)len, p);
        if (!is_group(item))
            return true;
        p += len + (p[len] == ',');
    }
    return false;
}

struct bench_row *bench_rows_add(const char *name, const char *transport)
{
    if (only && !listed(only, name) && !(group && listed(only, group)))
        return NULL;
    if (nrows == MAX_ROWS) {
        fprintf(stderr, "vcpud_bench: more than %d rows; %s dropped\n",
                MAX_ROWS, name);
        return NULL;
    }
    struct bench_row *r = &rows[nrows++];
    bench_row_init(r, name, transport);
    return r;
}

/* The ratios the issue asks for: (row) ÷ the sum of (den), medians of the
 * same transport (the in-process "none" rows stand in for every one). */
static const struct ratio_def {
    const char *row;
    const char *den[2];
    double target;
    const char *label;
} ratio_defs[] = {
    {"stream", {"raw", "local"}, 1.5, "stream / (raw + local)"},
    {"run_unary", {"grpc_unary", NULL}, 1.15, "run_unary / grpc_unary"},
    {"stream_regs", {"gdbstub_step", NULL}, 0.3, "stream_regs / gdbstub_step"},
    {"stream_getregs",
     {"gdbstub_regs", NULL},
     1.0,
     "stream_getregs / gdbstub_regs"},
    {"py_stream", {"py_run_unary", NULL}, 1.0, "py_stream / py_run_unary"},
};

static const struct bench_row *find(const char *name, const char *transport)
{
    for (size_t i = 0; i < nrows; i++)
        if (!rows[i].skipped && strcmp(rows[i].name, name) == 0 &&
            strcmp(rows[i].transport, transport) == 0)
            return &rows[i];
    return NULL;
}

void bench_rows_ratios(void)
{
    for (size_t i = 0; i < nrows; i++) {
        struct bench_row *r = &rows[i];
        for (size_t d = 0; d < sizeof(ratio_defs) / sizeof(ratio_defs[0]);
             d++) {
            const struct ratio_def *def = &ratio_defs[d];
            if (r->skipped || strcmp(r->name, def->row) != 0)
                continue;
            double sum = 0;
            bool ok = true;
            for (int k = 0; k < 2 && def->den[k]; k++) {
                const struct bench_row *x = find(def->den[k], r->transport);
                if (!x)
                    x = find(def->den[k], "none");
                if (!x) {
                    ok = false;
                    break;
                }
                sum += x->median_us;
            }
            if (!ok || sum <= 0)
                continue;
            r->has_ratio = true;
            r->ratio = r->median_us / sum;
            r->target = def->target;
            snprintf(r->ratio_of, sizeof(r->ratio_of), "%s", def->label);
        }
    }
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* Only unary Runs are handed over and replied to apart from the next
 * read; a stream's split has its run alone. */
static bool unary_split(const struct bench_row *r)
{
    return r->split_handover_us > 0 || r->split_reply_us > 0;
}

static void print_json(const struct bench_row *r)
{
    printf("{\"name\":");
    json_string(r->name);
    printf(",\"transport\":");
    json_string(r->transport);
    if (r->skipped) {
        printf(",\"skipped\":");
        json_string(r->reason);
        printf(",\"median_us\":null,\"p99_us\":null,\"per_s\":null}\n");
        return;
    }
    printf(",\"median_us\":%.2f,\"p99_us\":%.2f,\"mean_us\":%.2f,"
           "\"per_s\":%.0f,\"n\":%zu,\"client_cpu_us\":%.2f",
           r->median_us, r->p99_us, r->mean_us, r->per_s, r->n,
           r->client_cpu_us);
    if (r->has_server)
        printf(",\"server_cpu_us\":%.2f", r->server_cpu_us);
    if (r->has_split) {
        printf(",\"srv_guest_us\":%.2f", r->split_guest_us);
        if (unary_split(r))
            printf(",\"srv_handover_us\":%.2f,\"srv_reply_us\":%.2f",
                   r->split_handover_us, r->split_reply_us);
    }
    if (r->has_ratio) {
        printf(",\"ratio\":%.3f,\"ratio_of\":", r->ratio);
        json_string(r->ratio_of);
        printf(",\"target\":%.2f,\"meets_target\":%s", r->target,
               r->ratio <= r->target ? "true" : "false");
    }
    printf("}\n");
}

static void print_table_row(const struct bench_row *r)
{
    printf("%-18s %-9s ", r->name, r->transport);
    if (r->skipped) {
        printf("skipped: %s\n", r->reason);
        return;
    }
    printf("%9.1f %9.1f %8.0f %7.1f ", r->median_us, r->p99_us, r->per_s,
           r->client_cpu_us);
    if (r->has_server)
        printf("%7.1f", r->server_cpu_us);
    else
        printf("%7s", "-");
    if (r->has_ratio)
        printf("   %5.2fx %s (target <= %.2fx: %s)", r->ratio, r->ratio_of,
               r->target, r->ratio <= r->target ? "met" : "missed");
    printf("\n");
}

/* Where the mean round trip of each row that has the server's split
 * goes: the server's parts, and the rest (gRPC both ways, the network,
 * the client). */
static void print_splits(void)
{
    bool any = false;
    for (size_t i = 0; i < nrows && !any; i++)
        any = !rows[i].skipped && rows[i].has_split;
    if (!any)
        return;
    printf("\nvcpud's side of a round trip, mean us per exit (its /metrics):"
           " in the run,\nhanding a unary Run to the vCPU's thread, replying;"
           " the rest is gRPC,\nthe network and the client\n");
    printf("%-18s %-9s %9s %9s %9s %9s %9s\n", "item", "transport", "mean_us",
           "guest", "handover", "reply", "rest");
    for (size_t i = 0; i < nrows; i++) {
        const struct bench_row *r = &rows[i];
        if (r->skipped || !r->has_split)
            continue;
        double rest = r->mean_us - r->split_guest_us - r->split_handover_us -
                      r->split_reply_us;
        printf("%-18s %-9s %9.1f %9.1f ", r->name, r->transport, r->mean_us,
               r->split_guest_us);
        if (unary_split(r))
            printf("%9.1f %9.1f", r->split_handover_us, r->split_reply_us);
        else
            printf("%9s %9s", "-", "-");
        printf(" %9.1f\n", rest);
    }
}

void bench_rows_print(bool json)
{
    if (!json)
        printf("%-18s %-9s %9s %9s %8s %7s %7s   %s\n", "item", "transport",
               "median_us", "p99_us", "per_s", "cli_cpu", "srv_cpu", "ratio");
    for (size_t i = 0; i < nrows; i++) {
        if (json)
            print_json(&rows[i]);
        else
            print_table_row(&rows[i]);
    }
    if (!json)
        print_splits();
    fflush(stdout);
}
