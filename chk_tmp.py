from resdiff import limits
from resdiff.activations import activation
a = activation("swish")
for L in (1000, 4000):
    print(L, limits.euler_threshold_time(1.0, 1.0, 1.0, 1.0, a.d1_at_0, a.d2_at_0, 100.0, L, 4.0))
