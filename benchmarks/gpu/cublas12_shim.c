/* libcublas.so.12 for a machine that has only cuBLAS 13 (device check of faiss-gpu; never shipped).
 *
 * PyPI's faiss-gpu is built against CUDA 12 and binds eight cuBLAS functions with the symbol
 * version "libcublas.so.12"; the lent GPU machines carry only cuBLAS 13 (and a 650 MB cuBLAS 12
 * cannot travel there). This library defines those eight under that version and forwards each to
 * cuBLAS 13's function of the same name. Each definition is checked against cuBLAS 13's own
 * header by the compiler (a prototype that changed between 12 and 13 would not build).
 * Build: see faiss_gpu_on_device.sh.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <cublas_v2.h>

static void *real_lib(void) {
    static void *lib;
    if (!lib) {
        const char *path = getenv("CUBLAS13_PATH");
        lib = dlopen(path ? path : "libcublas.so.13", RTLD_NOW | RTLD_LOCAL);
        if (!lib) { fprintf(stderr, "cublas12 shim: %s\n", dlerror()); abort(); }
    }
    return lib;
}

#define REAL(name) ((__typeof__(&name))real_fn(#name))
static void *real_fn(const char *name) {
    void *f = dlsym(real_lib(), name);
    if (!f) { fprintf(stderr, "cublas12 shim: no %s in cuBLAS 13\n", name); abort(); }
    return f;
}

cublasStatus_t cublasCreate_v2(cublasHandle_t *handle) { return REAL(cublasCreate_v2)(handle); }
cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) { return REAL(cublasDestroy_v2)(handle); }
cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
    return REAL(cublasSetStream_v2)(handle, stream);
}
cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t *mode) {
    return REAL(cublasGetMathMode)(handle, mode);
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    return REAL(cublasSetMathMode)(handle, mode);
}
cublasStatus_t cublasSgemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                             int m, int n, int k, const float *alpha, const void *A, cudaDataType Atype,
                             int lda, const void *B, cudaDataType Btype, int ldb, const float *beta,
                             void *C, cudaDataType Ctype, int ldc) {
    return REAL(cublasSgemmEx)(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb,
                               beta, C, Ctype, ldc);
}
cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                            int m, int n, int k, const void *alpha, const void *A, cudaDataType Atype,
                            int lda, const void *B, cudaDataType Btype, int ldb, const void *beta,
                            void *C, cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t algo) {
    return REAL(cublasGemmEx)(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb,
                              beta, C, Ctype, ldc, computeType, algo);
}
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
                                          cublasOperation_t transb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType Atype, int lda,
                                          long long int strideA, const void *B, cudaDataType Btype,
                                          int ldb, long long int strideB, const void *beta, void *C,
                                          cudaDataType Ctype, int ldc, long long int strideC,
                                          int batchCount, cublasComputeType_t computeType,
                                          cublasGemmAlgo_t algo) {
    return REAL(cublasGemmStridedBatchedEx)(handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA,
                                            B, Btype, ldb, strideB, beta, C, Ctype, ldc, strideC,
                                            batchCount, computeType, algo);
}
