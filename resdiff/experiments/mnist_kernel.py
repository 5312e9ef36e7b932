"""Figure 6, dashed line: MNIST test accuracy of kernel regression with the kernel of
the completed FC ResNet in the doubly infinite limit (eq. 37 "ntk", or eq. 35-36 "nngp").

``n_train`` training images drawn by ``seed`` (:func:`resdiff.mnist.data.training_subset`),
the full 10,000-image test set, pixels / 255, one-hot targets, GP posterior mean with
noise variance ``noise`` (None: 1 / n_train, as in Section 6.3), prediction = argmax.
"""
import time

import numpy as np
import pandas as pd

from ..constraints import MNIST_KERNEL, checked
from ..mnist import data
from ..mnist import kernel as kr
from . import Result


@checked(MNIST_KERNEL)
def mnist_kernel(*, n_train, noise, sigma_w2, sigma_b2, kernel, seed, data_dir=None):
    if noise is None:
        noise = 1.0 / n_train
    subset = data.training_subset(n_train, seed)
    slope, offset = kr.coefficients(kernel, sigma_w2, sigma_b2)
    started = time.perf_counter()
    mnist = data.load_mnist(data_dir)
    loaded = time.perf_counter()
    z = data.as_features(mnist.train_images[subset])
    y = data.one_hot(mnist.train_labels[subset])
    weights = kr.fit_weights(z, y, slope, offset, noise)
    scores = kr.predict(data.as_features(mnist.test_images), weights, slope, offset)
    correct = int(np.sum(np.argmax(scores, axis=1) == mnist.test_labels))
    done = time.perf_counter()
    n_test = int(mnist.test_labels.shape[0])
    frame = pd.DataFrame([{
        "n_train": int(n_train), "seed": int(seed), "accuracy": correct / n_test,
        "kernel": kernel, "slope": slope, "offset": offset, "noise": float(noise),
        "sigma_w2": float(sigma_w2), "sigma_b2": float(sigma_b2), "n_test": n_test,
        "correct": correct,
    }])
    meta = {
        "data_dir": str(mnist.directory),
        "kernel_formula": "eq. 37 (full-training NTK)" if kernel == "ntk"
                          else "eq. 35-36 (GP / NNGP)",
        "sigma_z2": kr.SIGMA_Z2, "sigma_y2": kr.SIGMA_Y2, "T": 1.0, "phi_prime_0": 1.0,
        "solver": "Cholesky of the (Z+1) x (Z+1) feature-space system (Woodbury)",
        "load_s": round(loaded - started, 3), "solve_s": round(done - loaded, 3),
    }
    return Result(frame, meta)
