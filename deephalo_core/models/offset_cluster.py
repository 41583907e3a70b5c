"""The default segmenter: per-particle class and offset to its subhalo's centre, then clustering.

A PointGroup/HALOS-style instance segmenter that handles any number of subhalos:
1. A static k-nearest-neighbour graph in scaled phase space, coordinates (pos / R200,
   vel_weight * vel / V200): built once per halo with a k-d tree, so it costs a fraction of a
   model that recomputes neighbours in feature space at every layer. Inputs per particle: the
   features, the log of its mean neighbour distance (a local phase-space density) and local
   binding hints (potential minus the halo's smooth radial profile, speed relative to its
   position-space neighbours, their sum as a local energy; see `local_binding_features`) and,
   with `radial_features` (the trained default), radius, speed and energy in the host's frame
   (`host_frame_features`).
2. Three EdgeConv-style layers (PhaseConv: linear edge function, max and mean pooling) over it;
   their outputs and the inputs feed a per-particle head with 3 + 6 outputs: class logits (fuzz / primary / other subhalo) and
   the phase-space offset from the particle to its subhalo's centre (mean of its members in the
   graph coordinates), in units of `offset_scale`.
3. Inference: particles classed "subhalo" are shifted by their predicted offsets, which collapses
   each subhalo onto a tight blob; the blobs are found by density clustering (DBSCAN's rule on a
   k-NN graph: core points have `min_samples` neighbours within `cluster_eps`, cores within
   `cluster_eps` join, border points take their nearest core's cluster). Clusters smaller than
   `min_members` (Subfind's 20) go back to primary or fuzz, whichever the model prefers. Primary
   keeps label 0, clusters are ranked 1.. by decreasing size.

Inference over many halos (`predict_many`) runs the network once per batch of halos: their graphs
are disjoint, so a batch is their rows concatenated with each halo's neighbour indices shifted to
its rows, and every layer acts row by row or within a halo's own neighbours; the labels are the
ones `predict_labels` gives halo by halo. The k-d tree queries of a large halo use every core
(they run without the GIL, on plain threads that do not spin while the machine is busy).
"""
import contextlib
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from torch import nn

from deephalo_core.models import collate, relabel_by_size

FUZZ, PRIMARY, SUBHALO = 0, 1, 2  # semantic classes
EPS_GRID = (0.02, 0.04, 0.08, 0.16, 0.32, 0.64)
BIAS_GRID = (-2.0, -1.0, 0.0, 1.0, 2.0)
# Inference: k-d tree queries of halos this large use every core (below it, starting threads costs
# more than it saves); at most this many rows go through the network at once when halos are batched
# (a larger halo goes alone), which bounds the layers' activations.
PARALLEL_MIN_POINTS = 8192
BATCH_POINTS = 65_536
TORCH_THREADS_MIN_ROWS = 100_000  # a halo this large runs the network on torch's own threads
INFER_CHUNK_ROWS = 4096  # rows whose neighbour messages are gathered at once (see pooled_messages)


def query_workers(n: int) -> int:
    """cKDTree.query's `workers` for a halo of n points at inference time."""
    return -1 if n >= PARALLEL_MIN_POINTS else 1


_threads_lock = threading.Lock()
_threads_users = [0, 1]  # callers inside one_torch_thread, torch's thread count before the first


@contextlib.contextmanager
def one_torch_thread():
    """Run torch's CPU operators on one thread meanwhile. The network's operators are small and
    memory-bound: with several threads each one waits for the others at every operator, which on a
    busy machine (a descheduled thread) costs ~10 ms per operator; the cores go to the k-d trees
    and to preparing the next halos instead. Nested and concurrent callers share the setting."""
    with _threads_lock:
        if _threads_users[0] == 0:
            _threads_users[1] = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users[0] += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users[0] -= 1
            if _threads_users[0] == 0:
                torch.set_num_threads(_threads_users[1])


def graph_coords(features: np.ndarray, vel_weight: float) -> np.ndarray:
    """(N, 6) phase-space coordinates the graph and the offsets live in."""
    f = np.asarray(features, dtype=np.float32)
    return np.concatenate([f[:, :3], vel_weight * f[:, 3:6]], axis=1)


def self_knn(points: np.ndarray, k: int, workers: int = 1, leafsize: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(N, k) distances and indices of each point's k nearest points (itself among them), as
    cKDTree(points).query(points, k) gives them. The points are queried in the tree's own leaf
    order, so consecutive queries walk the same nodes (about a tenth faster on large halos); the
    answer for each point does not depend on that order."""
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    tree = cKDTree(points, leafsize=leafsize)
    order = tree.indices
    dist, idx = tree.query(points[order], k=k, workers=workers)
    out_dist, out_idx = np.empty((n, k)), np.empty((n, k), dtype=np.int64)
    out_dist[order], out_idx[order] = dist.reshape(n, k), idx.reshape(n, k)
    return out_dist, out_idx


def knn_neighbours(coords: np.ndarray, k: int, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """((N, k) int64 indices of each point's k nearest neighbours, itself excluded (a static graph),
    (N,) log10 of the mean distance to them: a local phase-space density estimate). `workers`
    threads share the query (-1: every core); the answer does not depend on it."""
    n = len(coords)
    k = int(min(k, max(n - 1, 1)))
    dist, nbr = self_knn(coords, k + 1, workers, leafsize=32)  # larger leaves suit 6 dimensions
    nbr = nbr.reshape(n, k + 1)[:, 1:]
    log_dist = np.log10(dist.reshape(n, k + 1)[:, 1:].mean(axis=1) + 1e-6)
    return np.ascontiguousarray(nbr, dtype=np.int64), log_dist.astype(np.float32)


def shell_medians(values: np.ndarray, shell: np.ndarray, n_shells: int) -> np.ndarray:
    """(n_shells,) the median of `values` in each shell (0 for an empty one), equal to np.median's,
    from one sort instead of one partition per shell (which costs more on small halos)."""
    counts = np.bincount(shell, minlength=n_shells)
    starts = np.cumsum(counts) - counts
    ordered = values[np.lexsort((values, shell))]
    out = np.zeros(n_shells)
    has = counts > 0
    # the middle one of an odd count, the mean of the middle two of an even one, as np.median
    out[has] = (ordered[starts[has] + (counts[has] - 1) // 2] + ordered[starts[has] + counts[has] // 2]) / 2
    return out


def local_binding_features(features: np.ndarray, k: int = 16, n_bins: int = 24, workers: int = 1) -> np.ndarray:
    """(N, 3) float32 hints of whether a particle is bound to a local clump, in virial units:
    the potential minus the halo's smooth radial profile (median potential in radial shells;
    negative inside a subhalo's well), log10 of the squared speed relative to the mean velocity of
    its k nearest neighbours in position (slow inside a clump), and their sum as a local energy
    (0.5 dv^2 + residual potential, negative for particles a clump holds). `workers` as in
    `knn_neighbours`."""
    f = np.asarray(features, dtype=np.float64)
    pos, vel, phi = f[:, :3], f[:, 3:6], f[:, 6]
    n = len(f)
    r = np.sqrt((pos**2).sum(axis=1))
    edges = np.unique(np.quantile(r, np.linspace(0, 1, n_bins + 1)))
    shell = np.clip(np.searchsorted(edges, r, side="right") - 1, 0, max(len(edges) - 2, 0))
    smooth = shell_medians(phi, shell, max(len(edges) - 1, 1))
    resid = phi - smooth[shell]
    kk = int(min(k, max(n - 1, 1)))
    _, nbr = self_knn(pos, kk + 1, workers)
    v_local = vel[nbr.reshape(n, kk + 1)].mean(axis=1)
    dv2 = ((vel - v_local) ** 2).sum(axis=1)
    return np.stack([resid, np.log10(dv2 + 1e-4), 0.5 * dv2 + resid], axis=1).astype(np.float32)


def host_frame_features(features: np.ndarray) -> np.ndarray:
    """(N, 3) float32 radius |x|, speed |v| and energy phi + 0.5 v^2 in the host's frame and virial
    units: fuzz is mostly the fast, loosely bound outskirts, a cut a small MLP finds hard to build
    from the Cartesian components."""
    f = np.asarray(features, dtype=np.float32)
    r = np.sqrt((f[:, :3] ** 2).sum(axis=1))
    v2 = (f[:, 3:6] ** 2).sum(axis=1)
    return np.stack([r, np.sqrt(v2), f[:, 6] + 0.5 * v2], axis=1).astype(np.float32)


class PhaseConv(nn.Module):
    """An EdgeConv whose edge function is linear, so it is applied per node before the gather:
    with P = W x, each node pools the messages P_j - P_i over its neighbours by max and mean, then
    h_i = SiLU(Linear([x_i, max, mean])). Same receptive field as EdgeConv at a fraction of the cost
    (no per-edge MLP), which keeps training on 2 CPU cores within minutes."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.message = nn.Linear(in_features, out_features)
        self.update = nn.Linear(in_features + 2 * out_features, out_features)

    def forward(self, x: torch.Tensor, nbr: torch.Tensor) -> torch.Tensor:
        p = self.message(x)
        if torch.is_grad_enabled():
            # (N, k, H); index_select backpropagates with index_add_, far faster than p[nbr] on CPU
            gathered = p.index_select(0, nbr.reshape(-1)).view(nbr.shape[0], nbr.shape[1], -1)
            # max_j (P_j - P_i) = max_j P_j - P_i, likewise the mean
            pooled = torch.cat([gathered.amax(dim=1) - p, gathered.mean(dim=1) - p], dim=1)
        else:  # nothing to backpropagate: the same numbers, gathered a chunk of rows at a time
            pooled = pooled_messages(p, nbr)
        return F.silu(self.update(torch.cat([x, pooled], dim=1)))


def pooled_messages(p: torch.Tensor, nbr: torch.Tensor, chunk_rows: int | None = None) -> torch.Tensor:
    """PhaseConv's pooled messages [max_j P_j - P_i, mean_j P_j - P_i] (N, 2H), gathered
    `chunk_rows` (default INFER_CHUNK_ROWS) rows at a time: the same numbers without the whole
    (N, k, H) gather (200 MB for a 134k-particle halo), whose allocation and memory traffic made
    inference memory-bound."""
    n, h = p.shape
    chunk_rows = chunk_rows or INFER_CHUNK_ROWS
    out = p.new_empty(n, 2 * h)
    for start in range(0, n, chunk_rows):
        rows = nbr[start:start + chunk_rows]
        gathered = p.index_select(0, rows.reshape(-1)).view(rows.shape[0], rows.shape[1], h)
        own = p[start:start + chunk_rows]
        torch.sub(gathered.amax(dim=1), own, out=out[start:start + chunk_rows, :h])
        torch.sub(gathered.mean(dim=1), own, out=out[start:start + chunk_rows, h:])
    return out


def semantic_targets(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    return np.where(labels < 0, FUZZ, np.where(labels == 0, PRIMARY, SUBHALO)).astype(np.int64)


def centre_offsets(coords: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Offset from each particle to the mean of its subhalo's members (0 for primary and fuzz)."""
    labels = np.asarray(labels)
    out = np.zeros_like(coords, dtype=np.float32)
    sub = labels >= 1
    if not sub.any():
        return out
    ids, inv = np.unique(labels[sub], return_inverse=True)
    sums = np.zeros((len(ids), coords.shape[1]))
    np.add.at(sums, inv, coords[sub])
    centres = sums / np.bincount(inv)[:, None]
    out[sub] = centres[inv] - coords[sub]
    return out


def density_clusters(points: np.ndarray, eps: float, min_samples: int = 5, workers: int = 1) -> np.ndarray:
    """DBSCAN's clusters computed on a k-nearest-neighbour graph (memory O(N k), not O(N^2) on
    collapsed blobs): -1 for noise, else a cluster id. `workers` as in `knn_neighbours`."""
    n = len(points)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    k = int(min(max(2 * min_samples, 12), n))
    dist, nbr = self_knn(points, k, workers)
    dist, nbr = dist.reshape(n, k), nbr.reshape(n, k)
    core = dist[:, min(min_samples, k) - 1] <= eps
    close = dist <= eps
    rows = np.repeat(np.arange(n), k)
    keep = (close & core[:, None] & core[nbr]).reshape(-1)
    graph = coo_matrix((np.ones(keep.sum()), (rows[keep], nbr.reshape(-1)[keep])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    out = np.where(core, comp, -1).astype(np.int64)
    # border points: the nearest core neighbour within eps
    border = np.nonzero(~core)[0]
    hits = close[border] & core[nbr[border]]
    first = hits.argmax(axis=1)
    found = hits[np.arange(len(border)), first]
    out[border[found]] = comp[nbr[border[found], first[found]]]
    return out


class OffsetClusterModel(nn.Module):
    name = "offset-cluster"

    def __init__(self, in_features: int = 7, k: int = 12, hidden: int = 32, vel_weight: float = 0.3,
                 offset_scale: float = 0.05, offset_weight: float = 1.0, cluster_eps: float = 0.04,
                 min_samples: int = 5, min_members: int = 20, class_weight_power: float = 0.0,
                 subhalo_bias: float = 0.0, fuzz_bias: float = 0.0, feature_set: str = "seed",
                 radial_features: bool = False, **_ignored):
        super().__init__()
        self.config = dict(in_features=int(in_features), k=int(k), hidden=int(hidden), vel_weight=float(vel_weight),
                           offset_scale=float(offset_scale), offset_weight=float(offset_weight),
                           cluster_eps=float(cluster_eps), min_samples=int(min_samples),
                           min_members=int(min_members), class_weight_power=float(class_weight_power),
                           subhalo_bias=float(subhalo_bias), fuzz_bias=float(fuzz_bias), feature_set=feature_set,
                           radial_features=bool(radial_features))
        h = int(hidden)
        # the features, the log k-NN distance, local binding hints (+ radius, speed, host energy)
        n_in = int(in_features) + 4 + (3 if radial_features else 0)
        self.convs = nn.ModuleList([PhaseConv(n_in, h), PhaseConv(h, h), PhaseConv(h, h)])
        self.head = nn.Sequential(nn.Linear(3 * h + n_in, 2 * h), nn.SiLU(), nn.Linear(2 * h, h), nn.SiLU(),
                                  nn.Linear(h, 3 + 6))
        self.register_buffer("class_weights", torch.ones(3))

    def fit_statistics(self, samples) -> None:
        """Class weights ~ frequency^-class_weight_power (normalised to mean 1). The default 0 keeps
        plain cross-entropy: up-weighting rare classes made the model over-predict them, which
        costs more (false subhalo members) than it gains; the decision biases are calibrated instead."""
        counts = np.ones(3)
        for s in samples:
            counts += np.bincount(semantic_targets(s.labels), minlength=3)
        w = (counts / counts.sum()) ** -self.config["class_weight_power"]
        self.class_weights.copy_(torch.as_tensor(w / w.mean(), dtype=torch.float32))

    def forward(self, x: torch.Tensor, nbr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hs, h = [], x
        for conv in self.convs:
            h = conv(h, nbr)
            hs.append(h)
        out = self.head(torch.cat(hs + [x], dim=1))
        return out[:, :3], out[:, 3:]

    def prepare(self, features: np.ndarray, labels: np.ndarray | None = None, rng=None) -> dict:
        x = np.asarray(features, dtype=np.float32)
        coords = graph_coords(x, self.config["vel_weight"])
        # inference (no labels) may use every core; training keeps one per process (DDP ranks)
        workers = query_workers(len(x)) if labels is None else 1
        nbr, log_dist = knn_neighbours(coords, self.config["k"], workers)
        parts = [x, log_dist[:, None], local_binding_features(x, workers=workers)]
        if self.config["radial_features"]:
            parts.append(host_frame_features(x))
        inputs = np.concatenate(parts, axis=1)
        batch = {"x": torch.as_tensor(inputs), "nbr": torch.as_tensor(nbr)}
        if labels is not None:
            batch["sem"] = torch.as_tensor(semantic_targets(labels))
            batch["offset"] = torch.as_tensor(centre_offsets(coords, labels) / self.config["offset_scale"])
        return batch

    def loss(self, batch: dict):
        logits, offset = self(batch["x"], batch["nbr"])
        sem = batch["sem"]
        ce = F.cross_entropy(logits, sem, weight=self.class_weights)
        sub = sem == SUBHALO
        if sub.any():
            off = F.smooth_l1_loss(offset[sub], batch["offset"][sub], beta=0.1)
        else:
            off = offset.sum() * 0.0
        loss = ce + self.config["offset_weight"] * off
        acc = (logits.argmax(1) == sem).float().mean().item()
        return loss, {"class_loss": ce.item(), "offset_loss": off.item(), "accuracy": acc}

    @torch.no_grad()
    def predict_labels(self, features: np.ndarray) -> np.ndarray:
        return self.labels_from_outputs(*self.outputs(features))

    def predict_many(self, features_list) -> list[np.ndarray]:
        """`predict_labels` of each halo's features, with the network run once per batch of halos."""
        return [self.labels_from_outputs(*out) for out in self.outputs_many(features_list)]

    def outputs(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(graph coordinates, class logits, offsets) for one halo, without clustering."""
        return next(self.outputs_many([features]))

    def outputs_many(self, features_list):
        """`outputs` of each halo's features, in order (a generator): halos are prepared one by one
        and sent through the network in batches of at most BATCH_POINTS rows (a larger halo alone)."""
        pending, rows = [], 0
        for features, batch in self._prepared(features_list):
            if pending and rows + len(batch["x"]) > BATCH_POINTS:
                yield from self._forward_batch(pending)
                pending, rows = [], 0
            pending.append((features, batch))
            rows += len(batch["x"])
        if pending:
            yield from self._forward_batch(pending)

    def _prepared(self, features_list):
        """(features, prepared inputs) of each halo, in order. With several halos and cores, a pool
        of threads prepares the next few halos (k-d trees and numpy, mostly without the GIL) while
        the caller runs the network and the clustering."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if cores == 1 or (isinstance(features_list, (list, tuple)) and len(features_list) < 2):
            for features in features_list:
                yield features, self.prepare(features)
            return
        window = deque()
        with ThreadPoolExecutor(max_workers=cores) as pool:
            for features in features_list:
                window.append((features, pool.submit(self.prepare, features)))
                if len(window) > 2 * cores:  # a bounded look-ahead keeps memory bounded
                    features, job = window.popleft()
                    yield features, job.result()
            while window:
                features, job = window.popleft()
                yield features, job.result()

    @torch.no_grad()
    def _forward_batch(self, pending: list) -> list:
        """Network outputs for several prepared halos at once: their rows concatenated and each
        halo's neighbour indices shifted to its rows, so the halos stay disjoint graphs."""
        device = self.class_weights.device
        sizes = [len(batch["x"]) for _, batch in pending]
        starts = np.cumsum([0] + sizes[:-1])
        joined = collate([batch for _, batch in pending])
        x, nbr = joined["x"].to(device), joined["nbr"].to(device)
        # small operators on one thread (see one_torch_thread); a large halo's matrix products
        # are long enough that every core pays (0.96 s -> 0.57 s for 134,657 rows on 2 cores)
        single = device.type == "cpu" and len(x) < TORCH_THREADS_MIN_ROWS
        with one_torch_thread() if single else contextlib.nullcontext():
            logits, offset = self(x, nbr)  # without grad: PhaseConv gathers in row chunks
        logits, offset = logits.cpu().numpy(), offset.cpu().numpy()
        return [(graph_coords(features, self.config["vel_weight"]), logits[s:s + n], offset[s:s + n])
                for (features, _), s, n in zip(pending, starts, sizes)]

    def calibrate(self, outputs: list, true_labels: list, weights=None) -> float:
        """Tune the inference settings on held-out halos (validation, never test) from their network
        outputs: the clustering radius with the subhalo decision bias (added to that class's
        logit), then the fuzz bias, each to the best mean PQ + ARI (weighted by `weights`, one per
        halo, when given). Stored in the config."""
        from deephalo_core.metrics import halo_metrics

        w = np.ones(len(outputs)) if weights is None else np.asarray(weights, dtype=np.float64)

        def score() -> float:
            ms = [halo_metrics(t, self.labels_from_outputs(*o)) for o, t in zip(outputs, true_labels)]
            return float(np.average([m["pq"] + m["ari"] for m in ms], weights=w))

        # The radius and the subhalo bias interact (more particles called subhalo need a wider
        # radius), so they are searched together, from a neutral fuzz bias; then the fuzz bias.
        self.config["fuzz_bias"] = 0.0
        results = {}
        for eps in EPS_GRID:
            for bias in BIAS_GRID:
                self.config["cluster_eps"], self.config["subhalo_bias"] = float(eps), float(bias)
                results[(eps, bias)] = score()
        eps, bias = max(results, key=results.get)
        self.config["cluster_eps"], self.config["subhalo_bias"] = float(eps), float(bias)
        results = {}
        for value in BIAS_GRID:
            self.config["fuzz_bias"] = float(value)
            results[value] = score()
        self.config["fuzz_bias"] = float(max(results, key=results.get))
        return results[self.config["fuzz_bias"]]

    def labels_from_outputs(self, coords: np.ndarray, logits: np.ndarray, offset: np.ndarray,
                            cluster_eps: float | None = None) -> np.ndarray:
        cfg = self.config
        eps = cfg["cluster_eps"] if cluster_eps is None else cluster_eps
        logits = logits + np.array([cfg["fuzz_bias"], 0.0, cfg["subhalo_bias"]], dtype=logits.dtype)
        sem = logits.argmax(1)
        labels = np.where(sem == PRIMARY, 0, -1).astype(np.int64)
        sub = np.nonzero(sem == SUBHALO)[0]
        shifted = coords[sub] + offset[sub] * cfg["offset_scale"]
        cluster = density_clusters(shifted, eps, cfg["min_samples"], query_workers(len(shifted)))
        ids, sizes = np.unique(cluster[cluster >= 0], return_counts=True)
        big = ids[sizes >= cfg["min_members"]]
        in_big = np.isin(cluster, big)
        labels[sub[in_big]] = cluster[in_big] + 1  # ids > 0; ranked below
        rest = sub[~in_big]
        labels[rest] = np.where(logits[rest, PRIMARY] >= logits[rest, FUZZ], 0, -1)
        return relabel_by_size(labels, primary=0 if (labels == 0).any() else None)
