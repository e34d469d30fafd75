"""PyTorch CPU peer of training-host's training loop, run by benches/torch_peer.rs.

It trains the strategy's MLP (in -> hidden... -> 3, ReLU, dropout after each hidden
activation) with Adam and (class-weighted) cross-entropy on the splits the bench wrote,
doing per batch the work ours does (forward with dropout, loss, loss.item(), backward,
Adam step, accuracy from the logits read back) and per epoch a validation pass in eval
mode under no_grad, keeping a copy of the best epoch's weights as ours does. It prints
one JSON line on stdout.

Data file (written by the bench; all numbers little-endian):
    line 1   JSON header terminated by b"\n":
             {"format": "hostbridge-torch-peer-v1", "n_features": F,
              "train_rows": N, "validation_rows": M, "class_weights": [w0, w1, w2]}
    then     train x   N*F f32, row-major
             train y   N   u8 (0 BUY, 1 HOLD, 2 SELL)
             valid x   M*F f32, row-major
             valid y   M   u8

Timed: from building the model to the end of the last epoch (the same span the bench
times around our `train`); loading the file and importing torch are not timed. One
untimed 1-epoch warm-up run goes first: the first training call in a fresh process pays
about 1.5 s of one-time library initialisation on this box (measured: 1 epoch at batch 32
took 1.6 s cold, 0.06 s warm), which is start-up cost, not throughput; the bench warms
our side the same way.

Usage: python torch_mlp.py DATA --epochs E --batch-size B --lr 0.001 --dropout 0.2
           --hidden 50,25 --threads 2 [--seed 42] [--no-class-weights] [--profile]
--profile times forward+loss, backward and step separately per batch in an extra run
(the extra clock reads make it slightly slower, so it is reported apart).
"""

import argparse
import copy
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FORMAT = "hostbridge-torch-peer-v1"


def load(path):
    with open(path, "rb") as f:
        header = json.loads(f.readline())
        if header.get("format") != FORMAT:
            raise SystemExit(f"{path}: format {header.get('format')!r}, expected {FORMAT}")
        nf, n, m = header["n_features"], header["train_rows"], header["validation_rows"]
        blob = f.read()
    need = 4 * nf * (n + m) + n + m
    if len(blob) != need:
        raise SystemExit(f"{path}: {len(blob)} data bytes, the header implies {need}")
    off = 0

    def take(dtype, count):
        nonlocal off
        a = np.frombuffer(blob, dtype=dtype, count=count, offset=off)
        off += a.nbytes
        return a

    xt = take("<f4", n * nf).reshape(n, nf)
    yt = take("u1", n)
    xv = take("<f4", m * nf).reshape(m, nf)
    yv = take("u1", m)
    as_x = lambda a: torch.from_numpy(a.copy())
    as_y = lambda a: torch.from_numpy(a.astype(np.int64))
    return header, as_x(xt), as_y(yt), as_x(xv), as_y(yv)


def build(nf, hidden, dropout):
    layers, width = [], nf
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, 3))
    return nn.Sequential(*layers)


def run(args, header, xt, yt, xv, yv, profile=False):
    torch.manual_seed(args.seed)
    weight = torch.tensor(header["class_weights"], dtype=torch.float32) if args.class_weights else None
    n, bs = xt.shape[0], args.batch_size
    phases = {"batch_prep": 0.0, "forward_loss": 0.0, "backward": 0.0, "step": 0.0, "readback": 0.0}
    clock = time.perf_counter
    started = clock()
    model = build(xt.shape[1], args.hidden, args.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    history, best = [], None
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(n)
        w_sum = loss_sum = 0.0
        correct = 0
        for i in range(0, n, bs):
            t0 = clock() if profile else 0.0
            idx = order[i : i + bs]
            xb, yb = xt[idx], yt[idx]
            t1 = clock() if profile else 0.0
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, weight=weight)
            # Ours reads the loss scalar back before stepping (to reject a non-finite loss).
            value = loss.item()
            if value != value or value in (float("inf"), float("-inf")):
                raise SystemExit(f"non-finite loss at epoch {epoch + 1}")
            t2 = clock() if profile else 0.0
            opt.zero_grad(set_to_none=True)
            loss.backward()
            t3 = clock() if profile else 0.0
            opt.step()
            t4 = clock() if profile else 0.0
            # Ours reads the batch logits back and tallies accuracy and the weighted loss.
            seen = logits.detach()
            correct += int((seen.argmax(1) == yb).sum().item())
            bw = float(weight[yb].sum().item()) if weight is not None else float(len(yb))
            loss_sum += value * bw
            w_sum += bw
            if profile:
                t5 = clock()
                phases["batch_prep"] += t1 - t0
                phases["forward_loss"] += t2 - t1
                phases["backward"] += t3 - t2
                phases["step"] += t4 - t3
                phases["readback"] += t5 - t4
        model.eval()
        with torch.no_grad():
            vl = model(xv)
            val_loss = F.cross_entropy(vl, yv, weight=weight).item()
            val_acc = (vl.argmax(1) == yv).float().mean().item()
        history.append((loss_sum / w_sum, correct / n, val_loss, val_acc))
        if best is None or val_loss < best[0]:
            best = (val_loss, copy.deepcopy(model.state_dict()))
    wall = clock() - started
    return wall, history, phases


def main():
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--dropout", type=float, required=True)
    p.add_argument("--hidden", type=lambda s: [int(v) for v in s.split(",")], required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-class-weights", dest="class_weights", action="store_false")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    header, xt, yt, xv, yv = load(args.data)
    n = xt.shape[0]
    run(argparse.Namespace(**{**vars(args), "epochs": 1}), header, xt, yt, xv, yv)
    wall, history, _ = run(args, header, xt, yt, xv, yv)
    out = {
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "train_rows": n,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "wall_s": wall,
        "samples_per_s": n * args.epochs / wall,
        "first_train_loss": history[0][0],
        "final_train_loss": history[-1][0],
        "final_train_accuracy": history[-1][1],
        "final_val_loss": history[-1][2],
        "final_val_accuracy": history[-1][3],
    }
    if args.profile:
        batches = args.epochs * -(-n // args.batch_size)
        pwall, _, phases = run(args, header, xt, yt, xv, yv, profile=True)
        out["profile_us_per_batch"] = {k: v / batches * 1e6 for k, v in phases.items()}
        out["profile_us_per_batch"]["total_incl_validation"] = pwall / batches * 1e6
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
