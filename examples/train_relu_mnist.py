"""Train a ReLU MLP on MNIST with numpy only, save it as MODEL.npz, compile it to a circuit and check it.

    python examples/train_relu_mnist.py --data ../shared/data -o mnist_mlp.npz

The network (default 784-64-10) is trained by backpropagation with Adam on the softmax cross-entropy.
Weights are saved as float32 arrays W0, b0, W1, b1 (the format ``resnet-sim compile-relu`` reads); the
test accuracy is that of the saved weights. The check compiles the saved network in exact mode, solves the
circuit for all 10,000 test images in batches and reports the max relative error
``max |y_circuit - y_network| / max(1, max |y_network|)`` and the argmax agreement with the network.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import resnet_sim as rs
from resnet_sim.data import load_dataset
from resnet_sim.relu_compiler import compile_relu, element_report, format_report, forward, relative_error


def init_params(sizes, rng):
    """He-initialised weights (n_out, n_in) and zero biases."""
    ws = [rng.normal(0.0, np.sqrt(2.0 / n_in), (n_out, n_in)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    return ws + [np.zeros(n) for n in sizes[1:]]


def loss_and_grads(params, x, labels):
    """Mean softmax cross-entropy of the batch and its gradients with respect to ``params``."""
    n = len(params) // 2
    ws, bs = params[:n], params[n:]
    hs = [x]
    for k in range(n):
        z = hs[-1] @ ws[k].T + bs[k]
        hs.append(np.maximum(z, 0.0) if k < n - 1 else z)
    logits = hs[-1] - hs[-1].max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(len(labels))
    loss = -np.mean(np.log(p[rows, labels] + 1e-12))
    delta = p
    delta[rows, labels] -= 1.0
    delta /= len(labels)
    gw, gb = [None] * n, [None] * n
    for k in reversed(range(n)):
        gw[k] = delta.T @ hs[k]
        gb[k] = delta.sum(axis=0)
        if k:
            delta = (delta @ ws[k]) * (hs[k] > 0)
    return loss, gw + gb


def train(x, y, sizes, epochs, batch, lr, seed):
    """Adam (beta1 0.9, beta2 0.999, eps 1e-8) on minibatches; returns (weights, biases)."""
    rng = np.random.default_rng(seed)
    params = init_params(sizes, rng)
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        total = 0.0
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            loss, grads = loss_and_grads(params, x[idx], y[idx])
            total += loss * len(idx)
            step += 1
            for p, g, mi, vi in zip(params, grads, m, v):
                mi += 0.1 * (g - mi)
                vi += 0.001 * (g * g - vi)
                p -= lr * (mi / (1 - 0.9**step)) / (np.sqrt(vi / (1 - 0.999**step)) + 1e-8)
        print(f"epoch {epoch + 1}: train loss {total / len(x):.4f}", flush=True)
    n = len(sizes) - 1
    return params[:n], params[n:]


def check_circuit(weights, biases, x, labels, batch):
    """Compile (exact mode), solve for all of ``x`` in batches; print and return (max rel. error, agreement)."""
    circuit = compile_relu(weights, biases)
    print(format_report(element_report(circuit)))
    y_net = forward(weights, biases, x)
    t0 = time.perf_counter()
    y_circ = np.concatenate([rs.solve(circuit, inputs=x[s:s + batch]).outputs for s in range(0, len(x), batch)])
    elapsed = time.perf_counter() - t0
    err = relative_error(y_circ, y_net)
    agree = float(np.mean(y_circ.argmax(axis=1) == y_net.argmax(axis=1)))
    print(f"circuit: {len(x)} images solved in {elapsed:.1f} s; max relative error {err:.2e}; "
          f"argmax agreement {agree:.4%}; circuit accuracy {np.mean(y_circ.argmax(axis=1) == labels):.4%}")
    return err, agree


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="data folder (default: $RESNET_SIM_DATA)")
    ap.add_argument("-o", "--output", default="mnist_mlp.npz", help="model file to write (default %(default)s)")
    ap.add_argument("--hidden", default="64", help="comma-separated hidden layer sizes (default %(default)s)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--solve-batch", type=int, default=2000, help="test images per circuit solve")
    ap.add_argument("--no-check", action="store_true", help="skip the circuit check")
    args = ap.parse_args(argv)

    try:
        x_train, y_train = load_dataset("mnist", "train", args.data)
        x_test, y_test = load_dataset("mnist", "test", args.data)
    except ValueError as err:
        ap.error(str(err))
    sizes = [x_train.shape[1], *(int(h) for h in args.hidden.split(",") if h), 10]
    t0 = time.perf_counter()
    weights, biases = train(x_train, y_train, sizes, args.epochs, args.batch, args.lr, args.seed)
    print(f"trained {'-'.join(map(str, sizes))} in {time.perf_counter() - t0:.1f} s")

    arrays = {}
    for k, (w, b) in enumerate(zip(weights, biases)):
        arrays[f"W{k}"], arrays[f"b{k}"] = w.astype(np.float32), b.astype(np.float32)
    np.savez_compressed(args.output, **arrays)
    weights = [arrays[f"W{k}"].astype(np.float64) for k in range(len(weights))]
    biases = [arrays[f"b{k}"].astype(np.float64) for k in range(len(biases))]
    accuracy = np.mean(forward(weights, biases, x_test).argmax(axis=1) == y_test)
    print(f"saved {args.output}; test accuracy {accuracy:.4%}")
    if not args.no_check:
        check_circuit(weights, biases, x_test.astype(np.float64), y_test, args.solve_batch)


if __name__ == "__main__":
    main()
