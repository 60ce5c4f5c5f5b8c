/* grpc_bare.h: what the bare gRPC server and its clients agree on. */
#ifndef VCPUD_BENCH_GRPC_BARE_H
#define VCPUD_BENCH_GRPC_BARE_H

#define BENCH_GRPC_UNARY "/vcpud.bench.Bench/Empty" /* empty in, empty out */
#define BENCH_GRPC_STREAM "/vcpud.bench.Bench/Echo" /* bidi, echoes */
/* The same, served from a thread of the call's own (as vcpud's Attach) */
#define BENCH_GRPC_STREAM_THREAD "/vcpud.bench.Bench/EchoThread"

#endif
