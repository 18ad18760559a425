// Stand-in (see README.md): the opaque handle type only.
#pragma once
struct cusolverDnContext;
typedef struct cusolverDnContext *cusolverDnHandle_t;
