import numpy as np, time
from numba import njit
from resdiff.jacobian import _matmul_into
@njit(cache=False)
def mm_blocked(A, B, out, rows):
    n = B.shape[0]; m = B.shape[1]
    JB = 64
    for r in range(0, rows, 4):
        for j0 in range(0, m, JB):
            j1 = min(j0 + JB, m)
            for rr in range(r, min(r+4, rows)):
                for j in range(j0, j1): out[rr, j] = 0.0
            if r + 4 <= rows:
                for k in range(n):
                    a0, a1, a2, a3 = A[r, k], A[r+1, k], A[r+2, k], A[r+3, k]
                    for j in range(j0, j1):
                        b = B[k, j]
                        out[r, j] += a0*b; out[r+1, j] += a1*b; out[r+2, j] += a2*b; out[r+3, j] += a3*b
            else:
                for rr in range(r, rows):
                    for k in range(n):
                        a = A[rr, k]
                        for j in range(j0, j1): out[rr, j] += a*B[k, j]
D = 500
A = np.random.default_rng(0).standard_normal((D,D)); B = np.random.default_rng(1).standard_normal((D,D)); o = np.empty((D,D)); o2 = np.empty((D,D))
_matmul_into(A,B,o,D); mm_blocked(A,B,o2,D)
print(np.array_equal(o, o2))
for f,oo in ((_matmul_into,o),(mm_blocked,o2)):
    t=time.time(); 
    for _ in range(5): f(A,B,oo,D)
    dt=(time.time()-t)/5; print(f.__name__ if hasattr(f,'__name__') else f, dt, D**3/dt/1e9, "G madd/s")
