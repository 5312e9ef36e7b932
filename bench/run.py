"""`make bench`: fixed workloads, medians of repeats, written to BENCHMARKS.md.

Measures the machine's own limits first (Gaussian variates/s of resdiff's generator, of
the earlier one the training runs keep, and of numpy's; BLAS FLOP/s), then the
paper-scale workload of each figure (at reduced draws for the heaviest, extrapolated
linearly in the number of draws, which is exact for work that is a loop over independent
draws) with its fraction of the bound set by the normals it draws, and the plain-numpy
baseline (explicit weights, numpy RNG) that the speed-ups are measured against.
Benchmarks never gate tests.
"""

import argparse
import math
import os
import platform
import statistics
import time

import numpy as np


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine():
    from resdiff.machine import describe

    cpu = describe()
    model = f"{cpu['cpu']} ({cpu['kernel_target']})"  # e.g. AMD EPYC (znver5)
    import numba

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "threads": numba.get_num_threads(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
    }


# --- machine limits -------------------------------------------------------------------
def rng_throughput(repeats=3):
    """Normals/s (all threads, parallel streams) of resdiff's generator
    (:mod:`resdiff.rng`, Philox4x32-10 + float32 Box-Muller), of the earlier one the training
    runs keep (:mod:`resdiff.rng_xoshiro`, xoshiro256** + ziggurat), and numpy's (one
    thread): ``(ours, earlier, numpy)``, timed alternately, medians."""
    from numba import njit, prange
    from resdiff import rng, rng_xoshiro

    def filler(module):
        @njit(parallel=True)
        def fill(key, out, reps):
            # each block refills a cache-resident buffer (as the kernels do), so this
            # measures the generator, not memory bandwidth
            for b in prange(out.shape[0]):
                s = module.new_state(key, b, 0)
                for _ in range(reps):
                    module.fill_normal(s, out[b])

        return fill

    out = np.empty((64, 32768))
    reps = 32
    key = rng.stream_key(0, "bench")
    rates = {}
    fills = {"ours": filler(rng), "earlier": filler(rng_xoshiro)}
    for fill in fills.values():
        fill(key, np.empty((2, 10)), 1)
    times = {name: [] for name in fills}
    for _ in range(repeats):  # alternate, so both see the same load on a shared machine
        for name, fill in fills.items():
            times[name].append(_median_time(lambda fill=fill: fill(key, out, reps), 1))
    for name in fills:
        rates[name] = out.size * reps / statistics.median(times[name])
    out = np.empty((64, 1_000_000))
    g = np.random.default_rng(0)
    flat = out.reshape(-1)
    theirs = flat.size / _median_time(lambda: g.standard_normal(out=flat), repeats)
    return rates["ours"], rates["earlier"], theirs


def normals_needed(target, params, meta):
    """Standard normals a workload draws (a lower bound on its time at the generator's
    rate), from its parameters and the plan its run recorded (``meta``): the Gram
    sampler draws rank x D per layer (rank: the factors' mean, else the number of
    points), explicit weights D^2 + D; the node pilot's draws are included."""
    from resdiff.sampling import plan

    L, D = params.get("depth"), params.get("width")
    if target.endswith("kde:kde"):
        simulated = [m for m in params["methods"] if m in ("resnet", "sde")]
        return len(simulated) * params["draws"] * L * D * len(params["z"])
    if target.endswith(("samples:samples", "samples:correlation")):
        points = meta.get("points", 0)
        if meta.get("sampler") == "explicit":
            per_layer = D * D + D
        else:
            per_layer = meta.get("mean_factor_rank", points) * D
        total = params["draws"] * L * per_layer
        if "nodes_pilot" in meta:
            total += plan.PILOT_DRAWS * L * plan.PILOT_NODES * D
        tried = meta.get("nodes_tried", [])
        for k in tried[:-1]:  # runs at too few nodes, repeated at more
            total += params["draws"] * L * k * D
        return total
    if target.endswith("ntk:ntk_convergence"):
        # each layer's D^2 + D normals going forward and again going back (not layer 0)
        return sum(params["draws"] * (2 * s - 1) * (s * s + s) for s in params["sizes"])
    return None


def blas_flops(n=2000, repeats=3):
    a = np.random.default_rng(0).standard_normal((n, n))
    a @ a
    return 2 * n**3 / _median_time(lambda: a @ a, repeats)


# --- plain-numpy baseline (explicit weights, numpy RNG) --------------------------------
def numpy_resnet_draw(rs, z, depth, width, sigma_w2=1.0, sigma_b2=1.0):
    """One draw of y = x_{T,1} at inputs z: the obvious numpy code (eq. 16, 26)."""
    dt = 1.0 / depth
    x = np.repeat(np.asarray(z, float)[None, :], width, axis=0)  # D x N
    for _ in range(depth):
        W = rs.standard_normal((width, width)) * math.sqrt(sigma_w2 * dt / width)
        b = rs.standard_normal((width, 1)) * math.sqrt(sigma_b2 * dt)
        x = x + np.tanh(W @ x + b)
    return x[0]


# --- workloads -----------------------------------------------------------------------
def jacobian_500(draws):
    """Seconds for ``draws`` draws of `resdiff jacobian` at D = L = 500 (resnet, sde and
    limit), after a compile at D = L = 4."""
    from resdiff import progress
    from resdiff.experiments.jacobian import jacobian

    progress.set_quiet(True)
    params = dict(
        model="resnet",
        activation="tanh",
        depth=500,
        width=500,
        draws=draws,
        z=1.0,
        sigma_w2=1.0,
        sigma_b2=1.0,
        methods=["resnet", "sde", "limit"],
        seed=0,
    )
    jacobian(**{**params, "depth": 4, "width": 4})
    return _median_time(lambda: jacobian(**params), 1)


def time_experiment(target, params, repeats):
    """``(median seconds, the last run's meta)`` of one experiment call."""
    import importlib

    module, attr = target.split(":")
    fn = getattr(importlib.import_module(module), attr)
    from resdiff import progress

    progress.set_quiet(True)
    small = dict(params)
    for key in ("draws",):
        if key in small:
            small[key] = 2
    if "sizes" in small:
        small["sizes"] = small["sizes"][:1]
    fn(**small)  # compile / load numba's cache outside the timing
    last = {}

    def run():
        last["result"] = fn(**params)

    t = _median_time(run, repeats)
    return t, dict(getattr(last["result"], "meta", {}) or {})


def figure_workloads(budget_draws):
    """(label, experiment, params actually run, factor to the paper preset)."""
    from resdiff.figures import FIGURES

    rows = []
    for number in FIGURES:  # registry order: 1-8, then the figures beyond the paper
        if number in (6, 7):  # training: seconds per epoch are in docs/training.md
            continue
        fig = FIGURES[number]
        for name in fig.names("paper"):
            ds = fig.datasets[name]
            params = dict(ds.params["paper"])
            factor = 1.0
            if "draws" in params and params["draws"] > budget_draws.get(number, 10**9):
                factor = params["draws"] / budget_draws[number]
                params["draws"] = budget_draws[number]
            rows.append((f"fig {number} {name}", ds.experiment, params, factor))
    return rows


# BENCHMARKS.md from this line on holds measurements of whole runs, made by hand; `make
# bench` keeps it as it is
KEPT = "<!-- kept by make bench: whole runs, measured by hand -->"


def kept_section(path):
    """The hand-measured end of ``path`` (from :data:`KEPT` on), as lines; [] without."""
    try:
        text = open(path).read()
    except OSError:
        return []
    start = text.find(KEPT)
    return [""] + text[start:].rstrip("\n").split("\n") if start >= 0 else []


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer draws everywhere (a check)")
    args = ap.parse_args()

    info = machine()
    print(f"machine: {info}", flush=True)
    ours, earlier, numpy_rate = rng_throughput()
    flops = blas_flops()
    print(
        f"normals/s: resdiff {ours:.3g} (Philox + float32 Box-Muller), earlier {earlier:.3g} "
        f"(xoshiro256** + ziggurat; {ours / earlier:.2f}x), numpy {numpy_rate:.3g}; "
        f"BLAS {flops / 1e9:.1f} GFLOP/s",
        flush=True,
    )

    # plain numpy baseline at the Fig. 2 scale, extrapolated from a few draws
    rs = np.random.default_rng(0)
    n_base = 2 if args.quick else 4
    t_draw = _median_time(lambda: numpy_resnet_draw(rs, [0.0, 1.0], 500, 500), n_base)
    baseline_fig2 = t_draw * 10000  # resnet method only; sde costs the same in numpy
    print(
        f"numpy baseline: {t_draw:.3f} s/draw -> {baseline_fig2:.0f} s for 10,000 draws", flush=True
    )

    # Fig. 2 at paper scale, all three methods (the headline target: <= 45 s)
    from resdiff.experiments.kde import kde
    from resdiff import progress

    progress.set_quiet(True)
    kde_params = dict(
        depth=500,
        width=500,
        draws=1000 if args.quick else 10000,
        z=[0.0, 1.0],
        sigma_w2=1.0,
        sigma_b2=1.0,
        activation="tanh",
        methods=["resnet", "sde", "analytic"],
        seed=0,
    )
    kde(**{**kde_params, "draws": 4})
    reps = 1 if not args.quick else args.repeats
    t_kde = _median_time(lambda: kde(**kde_params), reps)
    t_kde *= 10000 / kde_params["draws"]
    normals = 2 * 10000 * 500 * 500 * 2  # two simulated methods, D x N per layer
    bound_rng = normals / ours
    print(f"fig 2 paper: {t_kde:.1f} s (RNG bound {bound_rng:.1f} s)", flush=True)

    budget = (
        {1: 500, 4: 500, 5: 500, 8: 10**9, 3: 10**9, "jacobian": 10**9, "explosion": 10**9}
        if not args.quick
        else {1: 50, 4: 50, 5: 50, 8: 10**9, 3: 10, "jacobian": 10, "explosion": 100}
    )
    rows = []
    total = 0.0
    for label, target, params, factor in figure_workloads(budget):
        if label.startswith("fig 2"):
            t = t_kde
            run = "10,000 draws, measured" if not args.quick else "extrapolated"
            bound = bound_rng
        else:
            # standalone cost: no draw_store, so nothing is shared with Figs. 1 and 4
            t, meta = time_experiment(target, params, 1)
            t *= factor
            run = (
                "measured"
                if factor == 1
                else f"{params.get('draws')} draws measured, x{factor:g} (linear in draws)"
            )
            n = normals_needed(target, params, meta)
            bound = None if n is None else n * factor / ours
        total += t
        rows.append((label, t, run, bound))
        frac = "" if bound is None else f", {bound / t:.0%} of its RNG bound {bound:.1f} s"
        print(f"{label}: {t:.1f} s ({run}{frac})", flush=True)
    # the Jacobian at the size asked of it: D = L = 500, resnet and sde, 100 draws
    # (2 L D^3 multiply-adds per draw and method), from 2 draws (one per core)
    label, jac_t = "jacobian D = L = 500, 100 draws (resnet + sde)", jacobian_500(2) * 50
    rows.append((label, jac_t, "2 draws measured, x50 (linear in draws)", None))
    from resdiff.sampling.jacobian import multiply_adds

    jac_flops = 2 * 2 * multiply_adds(500, 500, 100)  # two methods, 2 flops a multiply-add
    # the dgemm rate above is that of OpenBLAS's threads (make bench: one); the kernel
    # runs one draw per Numba thread
    blas_threads = int(os.environ.get("OPENBLAS_NUM_THREADS") or os.cpu_count())
    jac_bound = jac_flops / (flops / blas_threads * info["threads"])
    print(f"{label}: {jac_t:.1f} s (dgemm bound {jac_bound:.0f} s)", flush=True)

    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` (`python -m bench.run`) on {time.strftime('%Y-%m-%d')}.",
        "Timings never gate tests.",
        "",
        "## Machine",
        "",
        "| cpu | cores | numba threads | python | numpy | numba |",
        "|---|---|---|---|---|---|",
        f"| {info['cpu']} | {info['cores']} | {info['threads']} | {info['python']} | "
        f"{info['numpy']} | {info['numba']} |",
        "",
        "## Limits measured by the suite",
        "",
        "| what | throughput |",
        "|---|---|",
        f"| resdiff normals (Philox4x32-10 + float32 Box-Muller, all threads) | "
        f"{ours / 1e9:.2f} G/s |",
        f"| earlier generator, kept for training (xoshiro256** + ziggurat, all threads) | "
        f"{earlier / 1e9:.2f} G/s |",
        f"| ratio ours / earlier (timed alternately in this run) | {ours / earlier:.2f}x |",
        f"| numpy `default_rng().standard_normal` (1 thread) | {numpy_rate / 1e9:.2f} G/s |",
        f"| BLAS dgemm 2000x2000 | {flops / 1e9:.1f} GFLOP/s |",
        "",
        "## Figure 2 at paper scale (L = D = 500, 10,000 draws, resnet + sde + analytic)",
        "",
        "| what | seconds |",
        "|---|---|",
        f"| resdiff (Gram sampler, all methods) | {t_kde:.1f} |",
        f"| plain numpy, explicit weights, resnet only ({t_draw:.3f} s/draw x 10,000) | "
        f"{baseline_fig2:.0f} |",
        f"| speed-up over plain numpy (resnet + sde vs 2 x baseline) | "
        f"{2 * baseline_fig2 / t_kde:.0f}x |",
        f"| RNG lower bound ({normals:.2g} normals at the measured rate) | {bound_rng:.1f} |",
        f"| fraction of the RNG limit reached | {bound_rng / t_kde:.0%} |",
        "",
        "## Paper preset per figure (1, 2, 3, 4, 5, 8)",
        "",
        "Each workload timed alone (in `resdiff fig all` Fig. 5 reuses the L = D = 500 "
        "ResNet and ReLU simulations of Figs. 4 and 1, so the pipeline costs less).",
        "",
        "The RNG bound is the time the normals a workload draws take at the generator's "
        "rate measured above (`bench.run.normals_needed`); the fraction is bound / time.",
        "",
        "| workload | seconds | how | RNG bound (s) | fraction of bound |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {label} | {t:.0f} | {run} | "
        + ("" if b is None else f"{b:.1f}")
        + " | "
        + ("" if b is None else f"{b / t:.0%}")
        + " |"
        for label, t, run, b in rows
    ]
    lines += [f"| **total** | **{total:.0f}** ({total / 60:.1f} min) | | | |", ""]
    fig3 = next((t for label, t, _, _ in rows if label.startswith("fig 3")), None)
    if fig3:
        from resdiff.figures import FIGURES

        p3 = FIGURES[3].params("ntk", "paper")
        # each layer's D^2 + D normals drawn going forward and again going back (not layer 0)
        n3 = sum(p3["draws"] * (2 * s - 1) * (s * s + s) for s in p3["sizes"])
        lines += [
            "",
            f"Fig. 3 lower bound: {n3:.3g} normals (weights regenerated in the "
            f"backward pass) at the measured rate = {n3 / ours:.1f} s; measured "
            f"{fig3:.1f} s ({n3 / ours / fig3:.0%} of the RNG limit).",
        ]

    lines += [
        "",
        f"Jacobian at D = L = 500: {jac_flops:.3g} flops for 100 draws of resnet and sde "
        "(two D x D products per layer, draw and method: J and its inverse G); at the "
        f"dgemm rate measured above ({flops / blas_threads / 1e9:.1f} GFLOP/s a thread) "
        f"on {info['threads']} threads the lower bound is {jac_bound:.0f} s; measured "
        f"{jac_t:.0f} s ({jac_bound / jac_t:.0%} of the dgemm bound).",
    ]

    from bench.time_epochs import bench_tables

    lines += [""] + bench_tables()
    lines += kept_section(args.out)

    from resdiff.files import atomic_write

    with atomic_write(args.out) as fh:
        fh.write("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
