#!/usr/bin/python3
"""PyTorch reference of mtl's model, for the benchmark and the quality check.

The same architecture as src/core/model.h: input
[user emb | item emb | user*item | one embedding per categorical field |
standardised numbers], MMoE (experts of ReLU layers, one softmax gate per
task) or shared-bottom, a ReLU tower per task, BCE from logits for binary
tasks and squared error on standardised targets for regression; a missing
label drops that task's loss for that row. Adam with coupled L2 (PyTorch's
weight_decay), the same initialisation, the same id dropout, a fixed number
of epochs (mtl runs with validation_fraction 0 in the benchmark to match).

Usage: torch_mtl.py TRAIN.csv TEST.csv [--epochs N] [--threads N]
                    [--predict-rows N] [--scores FILE]
Prints one line of JSON with times, rows per second and test AUCs.
"""
import argparse
import csv
import json
import math
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

USER_CATS = ["segment", "region", "member"]
ITEM_CATS = ["category", "brand", "on_sale"]
NUMS = ["price"]
PREDICT_BATCH = 8192
TASKS = [("ctr", "clicked", "binary"), ("cvr", "cvr", "binary"),
         ("ctcvr", "purchased", "binary"), ("rating", "rating", "regression")]


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [r[k] for r in rows] for k in rows[0]}


class Encoder:
    """Vocabularies and numeric statistics learned on the training split."""

    def __init__(self, cols):
        # data without ids (features only) has no user_id / item_id column
        self.users = {v: i for i, v in enumerate(sorted(set(cols.get("user_id", []))))}
        self.items = {v: i for i, v in enumerate(sorted(set(cols.get("item_id", []))))}
        self.vocab = {}
        for c in USER_CATS + ITEM_CATS:
            # row 0 is "missing or unknown", as in mtl
            values = sorted(set(v for v in cols[c] if v != ""))
            self.vocab[c] = {v: i + 1 for i, v in enumerate(values)}
        self.stats = {}
        for c in NUMS:
            x = np.array([float(v) for v in cols[c] if v != ""])
            self.stats[c] = (x.mean(), max(x.std(), 1e-6))

    def encode(self, cols):
        n = len(next(iter(cols.values())))
        uid = np.array([self.users.get(v, -1) for v in cols.get("user_id", [""] * n)], dtype=np.int64)
        iid = np.array([self.items.get(v, -1) for v in cols.get("item_id", [""] * n)], dtype=np.int64)
        cats = np.zeros((n, len(USER_CATS + ITEM_CATS)), dtype=np.int64)
        for j, c in enumerate(USER_CATS + ITEM_CATS):
            cats[:, j] = [self.vocab[c].get(v, 0) for v in cols[c]]
        nums = np.zeros((n, len(NUMS)), dtype=np.float32)
        for j, c in enumerate(NUMS):
            m, s = self.stats[c]
            nums[:, j] = [(float(v) - m) / s if v != "" else 0.0 for v in cols[c]]
        labels = np.full((n, len(TASKS)), np.nan, dtype=np.float32)
        for t, (_, col, _) in enumerate(TASKS):
            labels[:, t] = [float(v) if v != "" else np.nan for v in cols[col]]
        return (torch.from_numpy(uid), torch.from_numpy(iid), torch.from_numpy(cats),
                torch.from_numpy(nums), torch.from_numpy(labels))


class MTL(torch.nn.Module):
    def __init__(self, enc, E=8, experts=4, expert_units=(64,), tower_units=(32,),
                 model="mmoe", bottom_units=(128,)):
        super().__init__()
        self.E = E
        self.user = torch.nn.Embedding(len(enc.users) + 1, E)   # last row: unknown, zero
        self.item = torch.nn.Embedding(len(enc.items) + 1, E)
        self.cats = torch.nn.ModuleList(
            torch.nn.Embedding(len(enc.vocab[c]) + 1, E) for c in USER_CATS + ITEM_CATS)
        for emb in [self.user, self.item, *self.cats]:
            torch.nn.init.normal_(emb.weight, std=0.05)
        D = 3 * E + len(USER_CATS + ITEM_CATS) * E + len(NUMS)
        if model == "shared_bottom":
            experts, expert_units = 1, bottom_units
        self.gated = model == "mmoe"
        self.experts = torch.nn.ModuleList(self.mlp(D, expert_units) for _ in range(experts))
        H = expert_units[-1]
        self.gates = torch.nn.ModuleList(
            torch.nn.Linear(D, experts) for _ in TASKS) if self.gated else None
        if self.gated:
            for g in self.gates:
                torch.nn.init.normal_(g.weight, std=0.01)
                torch.nn.init.zeros_(g.bias)
        self.towers = torch.nn.ModuleList(
            self.mlp(H, tower_units + (1,), last_linear=True) for _ in TASKS)

    @staticmethod
    def mlp(n_in, units, last_linear=False):
        layers = []
        for k, n_out in enumerate(units):
            lin = torch.nn.Linear(n_in, n_out)
            last = last_linear and k == len(units) - 1
            torch.nn.init.normal_(lin.weight, std=math.sqrt((1.0 if last else 2.0) / n_in))
            torch.nn.init.zeros_(lin.bias)
            layers.append(lin)
            if not last:
                layers.append(torch.nn.ReLU())
            n_in = n_out
        return torch.nn.Sequential(*layers)

    def embed(self, table, ids):
        # -1 (dropped or unknown id) gives a zero vector, as a -1 slot does in mtl
        mask = (ids >= 0).unsqueeze(1).float()
        return table(ids.clamp(min=0)) * mask

    def forward(self, uid, iid, cats, nums):
        u, i = self.embed(self.user, uid), self.embed(self.item, iid)
        parts = [u, i, u * i] + [emb(cats[:, j]) for j, emb in enumerate(self.cats)]
        x = torch.cat(parts + [nums], dim=1)
        outs = torch.stack([e(x) for e in self.experts], dim=1)     # B x n x H
        logits = []
        for t, tower in enumerate(self.towers):
            if self.gated:
                g = torch.softmax(self.gates[t](x), dim=1).unsqueeze(2)
                mixed = (outs * g).sum(dim=1)
            else:
                mixed = outs[:, 0]
            logits.append(tower(mixed).squeeze(1))
        return torch.stack(logits, dim=1)


def loss_fn(logits, labels, weights):
    """Each task's loss summed over the rows labelled for it, over the batch's rows (as mtl)."""
    total = 0.0
    B = len(labels)
    for t, (_, _, kind) in enumerate(TASKS):
        y = labels[:, t]
        ok = ~torch.isnan(y)
        if not ok.any():
            continue
        z = logits[ok, t]
        if kind == "binary":
            l = torch.nn.functional.binary_cross_entropy_with_logits(z, y[ok], reduction="sum")
        else:
            l = torch.nn.functional.mse_loss(z, y[ok], reduction="sum") * 0.5
        total = total + weights[t] * l / B
    return total


def train(model, data, epochs, batch, lr, l2, id_dropout, seed):
    uid, iid, cats, nums, labels = data
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=l2)
    gen = torch.Generator().manual_seed(seed)
    n = len(uid)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            u, i = uid[idx], iid[idx]
            if id_dropout > 0:
                u = torch.where(torch.rand(len(idx), generator=gen) < id_dropout, -1, u)
                i = torch.where(torch.rand(len(idx), generator=gen) < id_dropout, -1, i)
            opt.zero_grad()
            loss = loss_fn(model(u, i, cats[idx], nums[idx]), labels[idx], [1.0] * len(TASKS))
            loss.backward()
            opt.step()


def predict(model, data, batch=PREDICT_BATCH):
    uid, iid, cats, nums, _ = data
    out = []
    with torch.no_grad():
        for s in range(0, len(uid), batch):
            z = model(uid[s:s + batch], iid[s:s + batch], cats[s:s + batch], nums[s:s + batch])
            out.append(z)
    return torch.cat(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("test")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="mmoe")
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--l2", type=float, default=1e-6)
    ap.add_argument("--id-dropout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--columns", help="JSON {cats, nums, tasks: [[name, column, kind]]} "
                    "for data other than the demo shop")
    ap.add_argument("--predict-rows", type=int, default=0,
                    help="also time batch prediction over this many rows (test rows repeated)")
    args = ap.parse_args()
    if args.columns:
        global USER_CATS, ITEM_CATS, NUMS, TASKS
        spec = json.loads(args.columns)
        USER_CATS, ITEM_CATS, NUMS = spec["cats"], [], spec["nums"]
        TASKS = [tuple(t) for t in spec["tasks"]]
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    train_cols, test_cols = read_csv(args.train), read_csv(args.test)
    enc = Encoder(train_cols)
    train_data, test_data = enc.encode(train_cols), enc.encode(test_cols)
    # regression targets learned standardised, as in mtl
    for t, (_, _, kind) in enumerate(TASKS):
        if kind == "regression":
            y = train_data[4][:, t]
            ok = ~torch.isnan(y)
            mean, std = y[ok].mean(), y[ok].std(unbiased=False)
            for d in (train_data, test_data):
                d[4][:, t] = (d[4][:, t] - mean) / std
    model = MTL(enc, model=args.model)
    # binary output biases start at the base rate's log-odds, as in mtl
    for t, (_, _, kind) in enumerate(TASKS):
        y = train_data[4][:, t]
        y = y[~torch.isnan(y)]
        if kind == "binary" and 0 < y.mean() < 1:
            model.towers[t][-1].bias.data.fill_(math.log(y.mean() / (1 - y.mean())))

    t0 = time.perf_counter()
    train(model, train_data, args.epochs, 512, args.lr, args.l2, args.id_dropout, args.seed)
    train_s = time.perf_counter() - t0
    model.eval()

    logits = predict(model, test_data)
    result = {"train_rows": len(train_data[0]), "epochs": args.epochs,
              "train_seconds": round(train_s, 3),
              "train_samples_per_s": round(len(train_data[0]) * args.epochs / train_s)}
    labels = test_data[4]
    for t, (name, _, kind) in enumerate(TASKS):
        y = labels[:, t]
        ok = ~torch.isnan(y)
        if kind == "binary":
            result["auc_" + name] = round(roc_auc_score(y[ok].numpy(), logits[ok, t].numpy()), 4)
        else:
            rmse = ((logits[ok, t] - y[ok]) ** 2).mean().sqrt().item() * std.item()
            result["rmse_" + name] = round(rmse, 4)
    if args.predict_rows > 0:
        reps = -(-args.predict_rows // len(test_data[0]))
        big = [torch.cat([x] * reps)[:args.predict_rows] for x in test_data]
        t0 = time.perf_counter()
        predict(model, big)
        s = time.perf_counter() - t0
        result["predict_rows"] = args.predict_rows
        result["predict_seconds"] = round(s, 3)
        result["predict_rows_per_s"] = round(args.predict_rows / s)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
