// Stand-in (see README.md): the opaque handle type only.
#pragma once
struct cublasLtContext;
typedef struct cublasLtContext *cublasLtHandle_t;
