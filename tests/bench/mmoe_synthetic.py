"""The MMoE paper's synthetic data (Ma et al. 2018, section 4): two regression
tasks whose correlation is set by p.

    w1 = c u1, w2 = c (p u1 + sqrt(1 - p^2) u2), u1 _|_ u2 unit vectors in R^d
    y_k = w_k . x + sum_i sin(alpha_i w_k . x + beta_i) + eps_k,  x ~ N(0, I)

c = 1, m = 10 sine terms, alpha, beta ~ N(0, 1), eps ~ N(0, 0.01) as the PLE
paper states them. Writes CSV: p, seed, split, y1, y2, x (a PostgreSQL array).

usage: mmoe_synthetic.py OUT.csv [--d 100] [--train 8000] [--test 2000]
"""
import argparse
import csv

import numpy as np


def tasks(rng, d, p):
    basis, _ = np.linalg.qr(rng.standard_normal((d, 2)))
    u1, u2 = basis[:, 0], basis[:, 1]
    return u1, p * u1 + np.sqrt(1 - p * p) * u2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--train", type=int, default=8000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    with open(args.out, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["p", "seed", "split", "y1", "y2", "x"])
        for p in (1.0, 0.9, 0.5):
            for seed in range(1, args.seeds + 1):
                rng = np.random.default_rng(seed * 100 + int(p * 10))
                w1, w2 = tasks(rng, args.d, p)
                alpha, beta = rng.standard_normal(10), rng.standard_normal(10)
                n = args.train + args.test
                x = rng.standard_normal((n, args.d))
                ys = []
                for w in (w1, w2):
                    z = x @ w
                    ys.append(z + np.sin(np.outer(z, alpha) + beta).sum(axis=1)
                              + rng.normal(0, 0.1, n))
                for r in range(n):
                    split = "train" if r < args.train else "test"
                    out.writerow([p, seed, split, f"{ys[0][r]:.6f}", f"{ys[1][r]:.6f}",
                                  "{" + ",".join(f"{v:.5f}" for v in x[r]) + "}"])


if __name__ == "__main__":
    main()
