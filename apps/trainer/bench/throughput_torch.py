"""Torch CPU reference of bench/throughput.ts: the same dense transformer shapes, trained and decoded.

Bench-only (Debian's python3-torch, run with /usr/bin/python3); never a dependency of Mnemo.
argv[1]: JSON list of specs {name, dim, layers, heads, kvHeads, ffnHidden, vocab, batch, seqLen,
rounds, decodeBatch, decodeContext, decodeSteps}. Prints one JSON line {name: {train, decode}}
(tokens/s, medians) on 1 thread and on all cores (`train1`, `decode1`, `trainN`, `decodeN`):
on a shared 2-core machine torch's OpenMP threads can collapse (measured 214 vs 4,398 tokens/s
at 2 vs 1 threads under load), so both are reported. Model: token embedding (tied head), pre-RMSNorm blocks of GQA attention
with RoPE and a SwiGLU FFN, like @mnemo/model's dense blocks; AdamW.
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

CORES = __import__("os").cpu_count() or 1


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


def bench(c):
    torch.manual_seed(0)
    m = LM(c)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    ids = torch.randint(0, c["vocab"], (c["batch"], c["seqLen"] + 1))
    times = []
    for r in range(c["rounds"] + 2):
        t0 = time.perf_counter()
        logits = m(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if r >= 2:
            times.append(time.perf_counter() - t0)
    train = c["batch"] * c["seqLen"] / statistics.median(times)
    with torch.no_grad():
        B, ctx = c["decodeBatch"], c["decodeContext"]
        caches = [{} for _ in m.blocks]
        m(torch.randint(0, c["vocab"], (B, ctx)), 0, caches)
        tok = torch.randint(0, c["vocab"], (B, 1))
        dt = []
        for s in range(c["decodeSteps"] + 2):
            t0 = time.perf_counter()
            m(tok, ctx + s, caches)
            if s >= 2:
                dt.append(time.perf_counter() - t0)
    return {"train": train, "decode": B / statistics.median(dt)}


specs = json.loads(sys.argv[1])
out = {}
for c in specs:
    r = {}
    for t in sorted({1, CORES}):
        torch.set_num_threads(t)
        b = bench(c)
        r[f"train{'1' if t == 1 else 'N'}"] = b["train"]
        r[f"decode{'1' if t == 1 else 'N'}"] = b["decode"]
    out[c["name"]] = r
    print(f"[throughput torch] {c['name']}: {out[c['name']]}", file=sys.stderr)
print(json.dumps(out))
