#!/usr/bin/python3
"""Baselines on the sparse shop (sparse_shop.sql), on the same split as mtl.

XGBoost: the user and item ids target-encoded (5-fold out-of-fold means on
the training split, smoothed towards the global rate with 20 pseudo-rows;
the test split gets the means of the whole training split), categorical
features as integer codes, price, scenario. One model per label: clicked
(CTR) and purchased (CTCVR, over all impressions).

PyTorch MMoE of mtl's default shape (the reference: the id product only, no
cross of features), and PyTorch DeepFM (Guo et al., IJCAI 2017): every field (user id, item id,
categorical features, scenario, and price bucketed into 10 quantiles) has an
embedding of width 8 and a first-order weight; logit = linear + FM
second-order term + an MLP (64, 32) over the concatenated embeddings. One
two-headed model: CTR, and CTCVR as CTR x CVR (ESMM's product), trained on
clicks and purchases over all impressions. Adam, 5% of training rows held
out to pick the epoch.

Usage: sparse_baselines.py DATA.csv [--seeds N] [--threads N] [--models M,...] [--cats C,...]
DATA.csv has the columns of sparse.sh's export; test = 1 marks the test
split. Prints one JSON line per model and seed with test AUCs.
"""
import argparse
import csv
import json
import time

import numpy as np
from sklearn.metrics import roc_auc_score

# categorical columns (--cats overrides: the demo shop has others)
CATS = ["scenario", "age_band", "gender", "city", "category", "brand"]


def read(path):
    """Columns as arrays of strings, read column-wise (millions of rows fit)."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        cols = [[] for _ in header]
        for row in reader:
            for c, v in zip(cols, row):
                c.append(v)
    return {k: np.array(c) for k, c in zip(header, cols)}


def codes(col, train):
    vocab = {v: i + 1 for i, v in enumerate(sorted(set(col[train])))}
    return np.array([vocab.get(v, 0) for v in col], dtype=np.int64)


def target_encode(ids, y, train, seed, prior_rows=20.0):
    """Out-of-fold smoothed means on train; whole-train means on the rest."""
    out = np.zeros(len(ids))
    rate = y[train].mean()
    tr = np.flatnonzero(train)
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, 5, len(tr))

    def means(idx):
        s, n = {}, {}
        for i, v in zip(ids[idx], y[idx]):
            s[i] = s.get(i, 0.0) + v
            n[i] = n.get(i, 0) + 1
        return s, n

    for k in range(5):
        s, n = means(tr[fold != k])
        for j in tr[fold == k]:
            out[j] = (s.get(ids[j], 0.0) + prior_rows * rate) / (n.get(ids[j], 0) + prior_rows)
    s, n = means(tr)
    for j in np.flatnonzero(~train):
        out[j] = (s.get(ids[j], 0.0) + prior_rows * rate) / (n.get(ids[j], 0) + prior_rows)
    return out


def xgboost_run(d, train, seed, threads):
    import xgboost as xgb
    result = {"model": "xgboost", "seed": seed}
    started = time.time()
    base = np.column_stack([codes(d[c], train) for c in CATS] + [d["price"].astype(float)])
    for task, label in (("ctr", "clicked"), ("ctcvr", "purchased")):
        y = d[label].astype(float)
        X = np.column_stack([base, target_encode(d["user_id"], y, train, seed),
                             target_encode(d["item_id"], y, train, seed + 1)])
        model = xgb.XGBClassifier(n_estimators=400, max_depth=6, learning_rate=0.05,
                                  subsample=0.8, colsample_bytree=0.8, min_child_weight=5,
                                  random_state=seed, n_jobs=threads, tree_method="hist")
        model.fit(X[train], y[train])
        result[task + "_auc"] = round(roc_auc_score(y[~train], model.predict_proba(X[~train])[:, 1]), 4)
    result["seconds"] = round(time.time() - started, 1)
    return result


def torch_run(d, train, seed, threads, name, epochs=8):
    """DeepFM or an MMoE of mtl's default shape, as CTR and CTCVR = CTR x CVR heads."""
    import torch
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    price = d["price"].astype(float)
    edges = np.quantile(price[train], np.linspace(0.1, 0.9, 9))
    fields = [codes(d["user_id"], train), codes(d["item_id"], train)] + \
        [codes(d[c], train) for c in CATS] + [np.searchsorted(edges, price) + 1]
    X = torch.tensor(np.column_stack(fields))
    logp = torch.tensor(((np.log(price) - np.log(price[train]).mean()) /
                         np.log(price[train]).std()).astype(np.float32)).unsqueeze(1)
    sizes = [int(f.max()) + 1 for f in fields]
    offsets = torch.tensor(np.concatenate([[0], np.cumsum(sizes)[:-1]]))
    clicked = torch.tensor(d["clicked"].astype(np.float32))
    bought = torch.tensor(d["purchased"].astype(np.float32))
    E, F = 8, len(fields)

    class DeepFM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(sum(sizes), E)
            self.lin = torch.nn.Embedding(sum(sizes), 2)
            torch.nn.init.normal_(self.emb.weight, std=0.01)
            torch.nn.init.zeros_(self.lin.weight)
            self.mlp = torch.nn.Sequential(torch.nn.Linear(F * E, 64), torch.nn.ReLU(),
                                           torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                           torch.nn.Linear(32, 2))
            self.fm = torch.nn.Linear(1, 2)

        def forward(self, rows):
            idx = X[rows] + offsets
            v = self.emb(idx)
            fm = 0.5 * (v.sum(1) ** 2 - (v ** 2).sum(1)).sum(1, keepdim=True)
            return self.lin(idx).sum(1) + self.fm(fm) + self.mlp(v.flatten(1))

    class MMoE(torch.nn.Module):
        """mtl's default shape: [user | item | user * item | each field | log price],
        4 experts of 64, a softmax gate and a tower of 32 per head."""

        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(sum(sizes), E)
            torch.nn.init.normal_(self.emb.weight, std=0.05)
            D = (F + 1) * E + 1
            self.experts = torch.nn.ModuleList(
                torch.nn.Sequential(torch.nn.Linear(D, 64), torch.nn.ReLU()) for _ in range(4))
            self.gates = torch.nn.ModuleList(torch.nn.Linear(D, 4) for _ in range(2))
            self.towers = torch.nn.ModuleList(
                torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
                for _ in range(2))

        def forward(self, rows):
            v = self.emb(X[rows] + offsets)
            x = torch.cat([v.flatten(1), v[:, 0] * v[:, 1], logp[rows]], dim=1)
            outs = torch.stack([e(x) for e in self.experts], dim=1)
            heads = []
            for g, t in zip(self.gates, self.towers):
                w = torch.softmax(g(x), dim=1).unsqueeze(2)
                heads.append(t((outs * w).sum(1)))
            return torch.cat(heads, dim=1)

    model = DeepFM() if name == "deepfm" else MMoE()
    opt = torch.optim.Adam(model.parameters(), lr=0.002 if name == "deepfm" else 0.003,
                           weight_decay=1e-6)
    tr = np.flatnonzero(train)
    rng = np.random.default_rng(seed)
    rng.shuffle(tr)
    val, fit = tr[: len(tr) // 20], tr[len(tr) // 20:]
    te = np.flatnonzero(~train)

    def heads(rows):
        z = model(torch.tensor(rows))
        ctr = torch.sigmoid(z[:, 0]).clamp(1e-6, 1 - 1e-6)
        return ctr, (ctr * torch.sigmoid(z[:, 1])).clamp(1e-6, 1 - 1e-6)

    def loss_of(rows):
        ctr, ctcvr = heads(rows)
        bce = torch.nn.functional.binary_cross_entropy
        return bce(ctr, clicked[rows]) + bce(ctcvr, bought[rows])

    started = time.time()
    best, best_state = None, None
    for epoch in range(epochs):
        model.train()
        rng.shuffle(fit)
        for b in range(0, len(fit), 512):
            opt.zero_grad()
            loss_of(fit[b:b + 512]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            v = float(loss_of(val))
        if best is None or v < best:
            best, best_state = v, {k: t.clone() for k, t in model.state_dict().items()}
    model.load_state_dict(best_state)
    with torch.no_grad():
        ctr, ctcvr = heads(te)
    return {"model": name, "seed": seed,
            "ctr_auc": round(roc_auc_score(clicked[te].numpy(), ctr.numpy()), 4),
            "ctcvr_auc": round(roc_auc_score(bought[te].numpy(), ctcvr.numpy()), 4),
            "seconds": round(time.time() - started, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="xgboost,deepfm,mmoe")
    ap.add_argument("--cats", default=",".join(CATS))
    a = ap.parse_args()
    CATS[:] = a.cats.split(",")
    d = read(a.data)
    train = d["test"] == "0"
    for seed in range(1, a.seeds + 1):
        for m in a.models.split(","):
            if m == "xgboost":
                print(json.dumps(xgboost_run(d, train, seed, a.threads)), flush=True)
            else:
                print(json.dumps(torch_run(d, train, seed, a.threads, m)), flush=True)


if __name__ == "__main__":
    main()
