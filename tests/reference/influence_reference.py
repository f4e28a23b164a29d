"""Independent reference values for Mnemo's training-data influence (METHODS.md section 4).

Reads a directory written by `mnemo influence` (spec.json, instances.csv,
checkpoints.csv, checkpoints/*.safetensors and, for the test ids only, influence.csv),
rebuilds Mnemo's GPT in PyTorch (tests/bench/torch_ref.py's copy of
crates/core/src/model.rs: learned positions, pre-LayerNorm with eps 1e-5, exact erf GELU,
causal attention scaled by 1/sqrt(head_dim), tied or untied head), in float64, and writes
reference.csv (`test,train,method,score`):

- tracin, tracin_last: captum 0.8.0's TracInCP. Per-example loss = the mean token NLL of
  the text (reduction "none" over the batch of one), model.eval(), the learning rate of
  each checkpoint returned by the checkpoint loader (checkpoints.csv). `layers=None` on
  the model as Mnemo ties it gives full TracIn; TracIn-Last loads the same weights into an
  UNTIED copy (for a tied model its head is a copy of the embedding matrix) and points
  `layers` at its head, so only the head's part of the gradient counts.
- tracin_we, tracin_we_topk: plain autograd. The looked-up input embeddings are a leaf;
  g_w = the sum of the leaf's gradient rows at the positions of input token w; BOS is left
  out unless the spec's influence.include_bos is set (the paper's reference keeps its
  special tokens; Mnemo's default drops BOS); TopK keeps, per example and checkpoint, the
  influence.topk positions of largest gradient norm (ties to the earlier position).

Usage: python influence_reference.py --dir DIR  (writes DIR/reference.csv)
"""

import argparse
import csv
import json
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from captum.influence import TracInCP

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from torch_ref import Gpt, read_safetensors  # noqa: E402


def embed_forward(model, x):
    """Logits for input embeddings x [B, T, d] (positions added here), like Gpt::forward_embeddings."""
    t = x.shape[1]
    h = x + model.wpe(torch.arange(t))
    for block in model.blocks:
        h = block(h)
    h = model.ln_f(h)
    return F.linear(h, model.wte.weight) if model.tied else model.lm_head(h)


class Ids(nn.Module):
    """The model called on token ids (captum calls model(*inputs))."""

    def __init__(self, gpt):
        super().__init__()
        self.gpt = gpt

    def forward(self, ids):
        return self.gpt(ids)


def per_example_loss(logits, targets):
    """Mean token NLL of each sequence: [B]."""
    b, t, v = logits.shape
    nll = F.cross_entropy(logits.reshape(b * t, v), targets.reshape(b * t), reduction="none")
    return nll.view(b, t).mean(1)


per_example_loss.reduction = "none"


def untied_copy(weights, config, vocab):
    """An untied model with the same function: for a tied checkpoint, lm_head = wte^T."""
    w = dict(weights)
    if config.get("tied_head", True):
        w["lm_head.weight"] = weights["wte.weight"].t().clone()
    cfg = dict(config, tied_head=False)
    m = Gpt(vocab, cfg).double()
    m.load_mnemo({k: v.double() for k, v in w.items()})
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()
    d = Path(args.dir)
    torch.set_num_threads(2)
    spec = json.loads((d / "spec.json").read_text())
    inf = spec["influence"]
    topk = inf.get("topk", 10)
    include_bos = inf.get("include_bos", False)

    tokens, split = {}, {}
    with open(d / "instances.csv", newline="") as f:
        for row in csv.DictReader(f):
            i = int(row["instance"])
            tokens[i] = [int(x) for x in row["tokens"].split()]
            split[i] = row["split"]
    bos = next(iter(tokens.values()))[0]
    train = sorted(i for i in tokens if split[i] == "train")
    tests = []
    with open(d / "influence.csv", newline="") as f:
        for row in csv.DictReader(f):
            t = int(row["test"])
            if t not in tests:
                tests.append(t)

    cks = []
    with open(d / "checkpoints.csv", newline="") as f:
        for row in csv.DictReader(f):
            cks.append((str(d / row["file"]), float(row["learning_rate"])))
    lr_of = dict(cks)
    w0, meta = read_safetensors(cks[0][0])
    config = json.loads(meta["mnemo.config"])
    vocab = int(meta["mnemo.vocab"])

    def xy(i):
        r = tokens[i]
        return torch.tensor([r[:-1]]), torch.tensor([r[1:]])

    train_ds = [xy(i) for i in train]
    train_ds = [(x[0], y[0]) for x, y in train_ds]
    loader = torch.utils.data.DataLoader(train_ds, batch_size=1, shuffle=False)

    scores = {}

    # Full TracIn: the model as Mnemo ties it, every parameter.
    def load_tied(model, path):
        w, _ = read_safetensors(path)
        model.gpt.load_mnemo({k: v.double() for k, v in w.items()})
        return lr_of[path]

    tied = Ids(Gpt(vocab, config).double())
    tied.eval()
    tracin = TracInCP(
        tied,
        loader,
        checkpoints=[p for p, _ in cks],
        checkpoints_load_func=load_tied,
        layers=None,
        loss_fn=per_example_loss,
        batch_size=1,
        sample_wise_grads_per_batch=False,
    )
    # TracIn-Last: an untied copy, gradients of its head only.
    def load_untied(model, path):
        w, m = read_safetensors(path)
        src = untied_copy(w, json.loads(m["mnemo.config"]), int(m["mnemo.vocab"]))
        model.gpt.load_state_dict(src.state_dict())
        return lr_of[path]

    head_model = Ids(untied_copy(w0, config, vocab))
    head_model.eval()
    last = TracInCP(
        head_model,
        loader,
        checkpoints=[p for p, _ in cks],
        checkpoints_load_func=load_untied,
        layers=["gpt.lm_head"],
        loss_fn=per_example_loss,
        batch_size=1,
        sample_wise_grads_per_batch=False,
    )
    for t in tests:
        x, y = xy(t)
        scores[(t, "tracin")] = tracin.influence((x, y), k=None)[0].tolist()
        scores[(t, "tracin_last")] = last.influence((x, y), k=None)[0].tolist()

    # TracIn-WE and TopK with plain autograd.
    def we_grads(model, toks):
        inp = torch.tensor([toks[:-1]])
        tgt = torch.tensor([toks[1:]])
        x = model.wte(inp).detach().requires_grad_(True)
        loss = per_example_loss(embed_forward(model, x), tgt)[0]
        (g,) = torch.autograd.grad(loss, x)
        g = g[0]
        counted = [p for p in range(len(toks) - 1) if include_bos or toks[p] != bos]

        def by_token(pos):
            out = {}
            for p in pos:
                w = toks[p]
                out[w] = out.get(w, 0) + g[p]
            return out

        norms = [(p, float((g[p] * g[p]).sum())) for p in counted]
        kept = [p for p, _ in sorted(norms, key=lambda pn: -pn[1])[:topk]]  # stable: ties to earlier
        return by_token(counted), by_token(kept)

    we = {(t, m): [0.0] * len(train) for t in tests for m in ("tracin_we", "tracin_we_topk")}
    for path, lr in cks:
        w, _ = read_safetensors(path)
        model = Gpt(vocab, config).double()
        model.load_mnemo({k: v.double() for k, v in w.items()})
        model.eval()
        tg = {t: we_grads(model, tokens[t]) for t in tests}
        for j, i in enumerate(train):
            a_we, a_top = we_grads(model, tokens[i])
            for t in tests:
                b_we, b_top = tg[t]
                we[(t, "tracin_we")][j] += lr * sum(float(b_we[k] @ a_we[k]) for k in b_we if k in a_we)
                we[(t, "tracin_we_topk")][j] += lr * sum(float(b_top[k] @ a_top[k]) for k in b_top if k in a_top)
    scores.update(we)

    with open(d / "reference.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["test", "train", "method", "score"])
        for t in tests:
            for m in ("tracin", "tracin_last", "tracin_we", "tracin_we_topk"):
                for i, s in zip(train, scores[(t, m)]):
                    w.writerow([t, i, m, repr(float(s))])
    print(f"wrote {d / 'reference.csv'}: {len(tests)} tests x {len(train)} training texts x 4 methods")


if __name__ == "__main__":
    main()
