// Stand-in (see README.md): the opaque handle and status types only.
#pragma once
struct cusparseContext;
typedef struct cusparseContext *cusparseHandle_t;
typedef enum { CUSPARSE_STATUS_SUCCESS = 0 } cusparseStatus_t;
