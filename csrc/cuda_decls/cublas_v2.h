// Stand-in (see README.md): the opaque handle and status types only.
#pragma once
struct cublasContext;
typedef struct cublasContext *cublasHandle_t;
typedef enum { CUBLAS_STATUS_SUCCESS = 0 } cublasStatus_t;
