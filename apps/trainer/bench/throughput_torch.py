"""Torch CPU reference of bench/throughput.ts: the same dense transformer shapes, trained and decoded.

Bench-only (Debian's python3-torch, run with /usr/bin/python3); never a dependency of Mnemo.
A worker: `throughput_torch.py THREADS` sets torch's thread count once, then answers one JSON line
per request line on stdin, so the bench can interleave torch's steps with its own rounds:
  {"op": "init", "key": K, "spec": {name, dim, layers, heads, kvHeads, ffnHidden, vocab, batch,
                                    seqLen, decodeBatch, decodeContext}}
      → builds the model, AdamW, a fixed batch and a prefilled decode cache; {"ok": true}
  {"op": "train", "key": K}   → one AdamW step on the batch;            {"ms": wall ms}
  {"op": "decode", "key": K}  → one decode step of decodeBatch tokens;  {"ms": wall ms}
  {"op": "free", "key": K}    → drops the model;                        {"ok": true}
The first line it prints is {"ready": true, "torch": version, "threads": n}. Model: token
embedding (tied head), pre-RMSNorm blocks of GQA attention with RoPE and a SwiGLU FFN, like
@mnemo/model's dense blocks.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

def rms(x, g, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g


def rope(x, pos):  # x [B, H, T, hd], pos [T]
    hd = x.shape[-1]
    inv = 1.0 / (10000 ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    ang = pos[:, None].float() * inv[None, :]
    cos, sin = ang.cos(), ang.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).flatten(-2)


class Block(torch.nn.Module):
    def __init__(s, d, h, kvh, f):
        super().__init__()
        s.h, s.kvh, s.hd = h, kvh, d // h
        s.n1 = torch.nn.Parameter(torch.ones(d))
        s.n2 = torch.nn.Parameter(torch.ones(d))
        s.wq = torch.nn.Linear(d, d, bias=False)
        s.wkv = torch.nn.Linear(d, 2 * kvh * s.hd, bias=False)
        s.wo = torch.nn.Linear(d, d, bias=False)
        s.w13 = torch.nn.Linear(d, 2 * f, bias=False)
        s.w2 = torch.nn.Linear(f, d, bias=False)

    def forward(s, x, pos, cache=None):
        B, T, D = x.shape
        y = rms(x, s.n1)
        q = s.wq(y).view(B, T, s.h, s.hd).transpose(1, 2)
        k, v = s.wkv(y).view(B, T, 2, s.kvh, s.hd).permute(2, 0, 3, 1, 4)
        q, k = rope(q, pos), rope(k, pos)
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], 2)
                v = torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        rep = s.h // s.kvh
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        att = (q @ k.transpose(-1, -2)) / s.hd**0.5
        if T > 1:
            Tk = k.shape[2]
            mask = torch.ones(T, Tk, dtype=torch.bool).tril(Tk - T)
            att = att.masked_fill(~mask, float("-inf"))
        o = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)
        x = x + s.wo(o)
        a, b = s.w13(rms(x, s.n2)).chunk(2, -1)
        return x + s.w2(F.silu(a) * b)


class LM(torch.nn.Module):
    def __init__(s, c):
        super().__init__()
        s.emb = torch.nn.Embedding(c["vocab"], c["dim"])
        s.blocks = torch.nn.ModuleList(Block(c["dim"], c["heads"], c["kvHeads"], c["ffnHidden"]) for _ in range(c["layers"]))
        s.nf = torch.nn.Parameter(torch.ones(c["dim"]))

    def forward(s, ids, start=0, caches=None):
        x = s.emb(ids)
        pos = torch.arange(start, start + ids.shape[1])
        for i, b in enumerate(s.blocks):
            x = b(x, pos, None if caches is None else caches[i])
        return rms(x, s.nf) @ s.emb.weight.t()


class Job:
    def __init__(s, c):
        torch.manual_seed(0)
        s.c = c
        s.m = LM(c)
        s.opt = torch.optim.AdamW(s.m.parameters(), lr=1e-4)
        s.ids = torch.randint(0, c["vocab"], (c["batch"], c["seqLen"] + 1))
        s.caches = [{} for _ in s.m.blocks]
        s.pos = c["decodeContext"]
        with torch.no_grad():
            s.m(torch.randint(0, c["vocab"], (c["decodeBatch"], s.pos)), 0, s.caches)
        s.tok = torch.randint(0, c["vocab"], (c["decodeBatch"], 1))

    def train(s):
        c = s.c
        logits = s.m(s.ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), s.ids[:, 1:].reshape(-1))
        s.opt.zero_grad()
        loss.backward()
        s.opt.step()

    def decode(s):
        with torch.no_grad():
            s.m(s.tok, s.pos, s.caches)
        s.pos += 1


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    torch.set_num_threads(threads)
    jobs = {}
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        op, key = req["op"], req.get("key")
        try:
            if op == "init":
                jobs[key] = Job(req["spec"])
                out = {"ok": True}
            elif op == "free":
                jobs.pop(key, None)
                out = {"ok": True}
            elif op in ("train", "decode"):
                job = jobs[key]
                t0 = time.perf_counter()
                job.train() if op == "train" else job.decode()
                out = {"ms": (time.perf_counter() - t0) * 1e3}
            else:
                out = {"error": f"unknown op {op!r}"}
        except Exception as e:  # the bench reports it and goes on without torch
            out = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)


main()
