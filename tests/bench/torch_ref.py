"""PyTorch reference of Mnemo's benchmark model (see tests/bench/compare).

Reads what `mnemo bench export-init` wrote (init.safetensors, bench.json): the same
GPT-2-style model (pre-LayerNorm, GELU, causal attention, learned positions, untied or
tied head) from Mnemo's initial weights, the same instances, order, learning rates and
AdamW settings. It checks the first batch and the first steps' losses and one batch's
per-sequence surprisal against Mnemo's, then times training (one warm-up step, then the
rest of the order) and evaluation (per-sequence surprisal, forward only, in batches of
the training batch size) on the CPU with the given number of threads, and prints JSON.
"""

import argparse
import json
import resource
import struct
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    """Tensors (float32) and metadata of a safetensors file, without extra packages."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise ValueError(f"{name}: expected F32, found {info['dtype']}")
        a, b = info["data_offsets"]
        buf = bytearray(raw[8 + n + a : 8 + n + b])
        tensors[name] = torch.frombuffer(buf, dtype=torch.float32).reshape(info["shape"]).clone()
    return tensors, meta


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.c_attn = nn.Linear(d, 3 * d)
        self.attn_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        hd = d // self.heads
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, hd).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class Gpt(nn.Module):
    def __init__(self, vocab, config):
        super().__init__()
        d = config["d_model"]
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(config["context"], d)
        self.blocks = nn.ModuleList(Block(d, config["n_heads"]) for _ in range(config["n_layers"]))
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        self.tied = config.get("tied_head", True)
        self.lm_head = None if self.tied else nn.Linear(d, vocab, bias=False)

    def forward(self, ids):
        t = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(t))
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)
        return F.linear(x, self.wte.weight) if self.tied else self.lm_head(x)

    @torch.no_grad()
    def load_mnemo(self, w):
        """Mnemo's GPT-2 names; its linear weights are [in, out], PyTorch's [out, in]."""

        def put(param, value):
            if tuple(param.shape) != tuple(value.shape):
                raise ValueError(f"shape {tuple(value.shape)} where {tuple(param.shape)} is needed")
            param.copy_(value)

        put(self.wte.weight, w["wte.weight"])
        put(self.wpe.weight, w["wpe.weight"])
        for i, blk in enumerate(self.blocks):
            p = f"h.{i}."
            for ln, name in ((blk.ln_1, "ln_1"), (blk.ln_2, "ln_2")):
                put(ln.weight, w[p + name + ".weight"])
                put(ln.bias, w[p + name + ".bias"])
            for lin, name in (
                (blk.c_attn, "attn.c_attn"),
                (blk.attn_proj, "attn.c_proj"),
                (blk.c_fc, "mlp.c_fc"),
                (blk.mlp_proj, "mlp.c_proj"),
            ):
                put(lin.weight, w[p + name + ".weight"].t())
                put(lin.bias, w[p + name + ".bias"])
        put(self.ln_f.weight, w["ln_f.weight"])
        put(self.ln_f.bias, w["ln_f.bias"])
        if self.lm_head is not None:
            put(self.lm_head.weight, w["lm_head.weight"].t())


def batch(instances, ids, pad):
    """Inputs, targets, 0/1 mask of scored targets and their count, as Mnemo's token_batch."""
    rows = [instances[i] for i in ids]
    t = max(max((len(r) for r in rows), default=2), 2) - 1
    inputs = [r[:-1] + [pad] * (t - len(r[:-1])) for r in rows]
    targets = [r[1:] + [pad] * (t - len(r[1:])) for r in rows]
    mask = [[1.0 if j < len(r) - 1 else 0.0 for j in range(t)] for r in rows]
    n = sum(max(len(r) - 1, 0) for r in rows)
    return torch.tensor(inputs), torch.tensor(targets), torch.tensor(mask), n


def token_nll(model, inputs, targets):
    logits = model(inputs)
    b, t, v = logits.shape
    return F.cross_entropy(logits.reshape(b * t, v), targets.reshape(b * t), reduction="none").view(b, t)


def surprisal(model, inputs, targets, mask):
    """Mean surprisal (nats/token) of each sequence over its scored targets."""
    nll = token_nll(model, inputs, targets)
    return (nll * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def rss_mib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="directory written by mnemo bench export-init")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data_dir = Path(args.data)
    d = json.loads((data_dir / "bench.json").read_text())
    weights, meta = read_safetensors(data_dir / "init.safetensors")
    config = json.loads(meta["mnemo.config"])
    vocab = int(meta["mnemo.vocab"])
    instances, pad, bsz = d["instances"], d["pad"], d["batch_size"]

    model = Gpt(vocab, config)
    model.load_mnemo(weights)
    opt_cfg = d["optimizer"]
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=d["lr"][0],
        betas=(opt_cfg["beta_1"], opt_cfg["beta_2"]),
        eps=opt_cfg["epsilon"],
        weight_decay=opt_cfg["weight_decay"],
    )
    baseline = rss_mib("VmRSS")

    # The checks: the same first batch, and one batch's surprisal under the initial weights.
    order = d["order"]
    inputs, targets, mask, _ = batch(instances, order[0], pad)
    fb = d["first_batch"]
    first_batch_identical = (
        inputs.tolist() == fb["inputs"] and targets.tolist() == fb["targets"] and mask.tolist() == fb["mask"]
    )
    eval_ids = d["eval_ids"]
    with torch.inference_mode():
        s0 = surprisal(model, *batch(instances, eval_ids[:bsz], pad)[:3]).tolist()
    eval_diff = max(abs(a - b) for a, b in zip(s0, d["mnemo_first_eval_surprisal"]))

    # Training: step 1 is the warm-up, the rest are timed; every loss is read back.
    losses = []
    start = None
    for step, ids in enumerate(order, start=1):
        if step == 2:
            start = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = d["lr"][step - 1]
        inputs, targets, mask, n = batch(instances, ids, pad)
        loss = (token_nll(model, inputs, targets) * mask).sum() / max(n, 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    train_s = time.perf_counter() - start
    timed = len(order) - 1
    tokens = sum(batch(instances, ids, pad)[3] for ids in order[1:])

    # Evaluation: one warm-up batch, then every evaluation sequence.
    batches = [batch(instances, eval_ids[i : i + bsz], pad) for i in range(0, len(eval_ids), bsz)]
    with torch.inference_mode():
        surprisal(model, *batches[0][:3]).tolist()
        t0 = time.perf_counter()
        scores = []
        for inputs, targets, mask, _ in batches:
            scores.extend(surprisal(model, inputs, targets, mask).tolist())
        eval_s = time.perf_counter() - t0
    eval_tokens = sum(b[3] for b in batches)

    mnemo_losses = d["mnemo_losses"]
    diffs = [abs(a - b) for a, b in zip(losses, mnemo_losses)]
    print(
        json.dumps(
            {
                "torch_version": torch.__version__,
                "threads": torch.get_num_threads(),
                "timed_steps": timed,
                "tokens_per_step": tokens / max(timed, 1),
                "ms_per_step": train_s * 1000.0 / max(timed, 1),
                "train_tokens_per_s": tokens / train_s,
                "eval_sequences": len(scores),
                "eval_batch": bsz,
                "eval_seconds": eval_s,
                "eval_sequences_per_s": len(scores) / eval_s,
                "eval_tokens_per_s": eval_tokens / eval_s,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                "baseline_rss_mib": baseline,
                "check": {
                    "first_batch_identical": first_batch_identical,
                    "losses_torch": losses[: len(mnemo_losses)],
                    "losses_mnemo": mnemo_losses,
                    "loss_abs_diff": diffs,
                    "first_step_loss_abs_diff": diffs[0] if diffs else None,
                    "eval_surprisal_max_abs_diff": eval_diff,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
