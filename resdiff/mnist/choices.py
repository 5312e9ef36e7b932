"""The choices a training run takes (no PyTorch needed to read them)."""
OPTIMIZERS = ("gd", "sgd", "adam-full", "adam")   # Section 6.3
FULL_BATCH = ("gd", "adam-full")
# fp32: float32 throughout (the reference); tf32: CUDA's TF32 matmuls and convolutions
# (float32 on a CPU); bf16: matmul/convolution operands rounded to bfloat16, float32
# accumulation, residual stream, loss and weights (resdiff.mnist.models)
PRECISIONS = ("fp32", "bf16", "tf32")
