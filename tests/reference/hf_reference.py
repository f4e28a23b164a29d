"""The transformers reference of Mnemo's Hugging Face import and export.

    python3 -m venv tests/reference/.venv-hf
    tests/reference/.venv-hf/bin/pip install -r tests/reference/requirements-hf.txt
    tests/reference/.venv-hf/bin/python tests/reference/hf_reference.py models
    tests/reference/.venv-hf/bin/python tests/reference/hf_reference.py export-check DIR
    tests/reference/.venv-hf/bin/python tests/reference/hf_reference.py series OUT

`models` writes tests/fixtures/hf/{gpt2,neox,neox-seq}: tiny random models (seeded) saved by
`save_pretrained`, a byte-level BPE tokenizer trained on a fixed text, and `expected.json`
(texts, their token ids, greedy continuations) with `expected.safetensors` (the logits of
every text). Every parameter is perturbed after initialisation so that layer norms and
biases are not the identity: a wrong mapping of any tensor shows in the logits.

`export-check DIR` loads a GPT-2 folder that `mnemo export-hf` wrote and writes
DIR/transformers.safetensors: the logits transformers computes for the ids in DIR/ids.json.

`series OUT` trains a small GPT-NeoX with a plain PyTorch loop on 2000 short records (a
fifth never trained; the rest seen once, in a seeded order, as Pythia sees its data),
saving a checkpoint (config, weights, tokenizer) every 25 steps in
OUT/step-N, and writes OUT/order.csv (instance,step: the optimiser step whose batch held
the instance) and OUT/data.txt (one record per line): the inputs of
`mnemo profile --checkpoints`.
"""

import json
import os
import random
import sys

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    PreTrainedTokenizerFast,
)

ROOT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "hf")

CORPUS = (
    "The quick brown fox jumps over the lazy dog. "
    "Memorisation is measured by comparing a model's loss on texts it was trained on "
    "with its loss on texts it never saw. A canary is a random string inserted into "
    "the training data; its exposure says how much more likely the model finds it than "
    "other random strings. Counterfactual memorisation compares models trained with "
    "and without an example. 0123456789 alpha beta gamma delta epsilon zeta eta theta."
)

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A canary is a random string inserted into the training data",
    "memorisation 0123 theta, zeta; and without",
]


def tokenizer(vocab_size=300):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([CORPUS] * 4, trainer)
    return tok


def perturb(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            p.add_(torch.randn(p.shape, generator=g) * 0.05)


def greedy(model, ids, n):
    seq = list(ids)
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([seq])).logits[0, -1]
            seq.append(int(torch.argmax(logits)))
    return seq[len(ids):]


def write_model(name, model, tok):
    out = os.path.join(ROOT, name)
    os.makedirs(out, exist_ok=True)
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    tok.save(os.path.join(out, "tokenizer.json"))
    gen = os.path.join(out, "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)
    texts = []
    logits = {}
    for i, text in enumerate(TEXTS):
        ids = tok.encode(text).ids
        with torch.no_grad():
            logits[f"logits.{i}"] = model(torch.tensor([ids])).logits[0].contiguous()
        texts.append({"text": text, "ids": ids, "greedy": greedy(model, ids[:6], 8)})
    save_file(logits, os.path.join(out, "expected.safetensors"))
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"texts": texts}, f, indent=1)
        f.write("\n")


def cmd_models():
    torch.manual_seed(0)
    tok = tokenizer()
    v = tok.get_vocab_size()
    gpt2 = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=v,
            n_positions=64,
            n_embd=32,
            n_layer=2,
            n_head=4,
            activation_function="gelu_new",
            bos_token_id=0,
            eos_token_id=0,
        )
    )
    perturb(gpt2, 1)
    write_model("gpt2", gpt2, tok)
    for name, parallel, factor in [("neox", True, 0.5), ("neox-seq", False, 1.0)]:
        torch.manual_seed(0)
        neox = GPTNeoXForCausalLM(
            GPTNeoXConfig(
                vocab_size=v + 4,  # padded past the tokenizer, as Pythia's is
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=128,
                max_position_embeddings=64,
                use_parallel_residual=parallel,
                rope_parameters={
                    "rope_type": "default",
                    "rope_theta": 10000.0,
                    "partial_rotary_factor": factor,
                },
                bos_token_id=0,
                eos_token_id=0,
            )
        )
        perturb(neox, 2)
        write_model(name, neox, tok)


def cmd_export_check(d):
    model = GPT2LMHeadModel.from_pretrained(d)
    model.eval()
    with open(os.path.join(d, "ids.json")) as f:
        rows = json.load(f)
    out = {}
    with torch.no_grad():
        for i, ids in enumerate(rows):
            out[f"logits.{i}"] = model(torch.tensor([ids])).logits[0].contiguous()
    # transformers' own tokenizer class must read the exported tokenizer.json.
    fast = PreTrainedTokenizerFast(tokenizer_file=os.path.join(d, "tokenizer.json"))
    text = "hello"
    out["hello"] = torch.tensor(fast(text)["input_ids"], dtype=torch.int64)
    save_file(out, os.path.join(d, "transformers.safetensors"))


WORDS = (
    "red green blue amber ivory coral jade olive plum rose slate teal "
    "ant bee cat dog eel fox gnu hen ibis jay kite lynx mole newt owl "
    "runs sleeps jumps sings reads writes hides swims climbs waits"
).split()


def records(n, seed):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = " ".join(rng.choice(WORDS) for _ in range(6))
        out.append(f"record {i:03d}: {words} {rng.randrange(10**6):06d}.")
    return out


def cmd_series(out):
    torch.manual_seed(0)
    rng = random.Random(0)
    data = records(2000, 7)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "data.txt"), "w") as f:
        f.write("\n".join(data) + "\n")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(data, trainer)
    config = GPTNeoXConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        max_position_embeddings=64,
        bos_token_id=0,
        eos_token_id=0,
    )
    model = GPTNeoXForCausalLM(config)
    ids = list(range(len(data)))
    rng.shuffle(ids)
    heldout = set(ids[: len(ids) // 5])
    train = [i for i in ids if i not in heldout]
    steps, batch, every = 200, 8, 25
    # The data order: one pass in a seeded order per epoch, batches of 8.
    order = []
    epoch = list(train)
    while len(order) < steps * batch:
        rng.shuffle(epoch)
        order.extend(epoch)
    order = order[: steps * batch]
    enc = [tok.encode(t).ids for t in data]
    pad = 0
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)

    def save(step):
        d = os.path.join(out, f"step-{step}")
        model.save_pretrained(d, safe_serialization=True)
        tok.save(os.path.join(d, "tokenizer.json"))
        gen = os.path.join(d, "generation_config.json")
        if os.path.exists(gen):
            os.remove(gen)

    save(0)
    rows = []
    model.train()
    for step in range(1, steps + 1):
        chunk = order[(step - 1) * batch : step * batch]
        rows.extend((i, step) for i in chunk)
        t = max(len(enc[i]) for i in chunk)
        x = torch.full((len(chunk), t), pad)
        mask = torch.zeros((len(chunk), t))
        for r, i in enumerate(chunk):
            x[r, : len(enc[i])] = torch.tensor(enc[i])
            mask[r, : len(enc[i])] = 1
        logits = model(x).logits[:, :-1]
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="none"
        )
        m = mask[:, 1:].reshape(-1)
        loss = (nll * m).sum() / m.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % every == 0:
            print(f"step {step} loss {loss.item():.3f}", flush=True)
            save(step)
    with open(os.path.join(out, "order.csv"), "w") as f:
        f.write("instance,step\n")
        for i, s in rows:
            f.write(f"{i},{s}\n")


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "models":
        cmd_models()
    elif cmd == "export-check":
        cmd_export_check(sys.argv[2])
    elif cmd == "series":
        cmd_series(sys.argv[2])
    else:
        sys.exit(__doc__)
