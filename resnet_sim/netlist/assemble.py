"""Element rows, in reading order, to a Circuit: node numbering, duplicate names, column arrays.

Rows arrive in chunks, in the order the cards are read: *general* chunks (Python strings, from the
card parser) and *fast* chunks (byte spans into a file's bytes, from fastpath.scan).
Nodes are numbered in order of first appearance over all rows, so both kinds of chunk give exactly the
circuit the card parser alone would give.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..circuit import KINDS, NODE_COLUMNS, Circuit
from ..errors import NetlistError

KIND_LETTERS = "RVIDECL"  # element kind codes of the rows (fastpath.py uses the same)
KIND_INDEX = {kind: i for i, kind in enumerate(KIND_LETTERS)}


@dataclass
class FastChunk:
    """Simple lines of one file, already parsed: spans index ``buf`` (the file's bytes; names are
    lower-cased when read out)."""

    file: str
    buf: np.ndarray
    starts: np.ndarray  # byte offsets of every line of the file (start, end)
    ends: np.ndarray
    kind: np.ndarray  # (m,) index into "RVIDECL"
    name_start: np.ndarray
    name_end: np.ndarray
    node_start: np.ndarray  # (m, 4), -1 where unused
    node_end: np.ndarray
    model_start: np.ndarray  # (m,) diode model name span, -1 where none
    model_end: np.ndarray
    value: np.ndarray
    line: np.ndarray  # (m,) 1-based
    model: np.ndarray | None = None  # (m,) model names as stored in the Circuit, set by the reader


class _GeneralChunk:
    def __init__(self):
        self.kind: list[int] = []
        self.name: list[str] = []
        self.nodes: list[tuple[str, ...]] = []
        self.value: list[float] = []
        self.model: list[str] = []
        self.where: list[tuple[str, int]] = []


class Rows:
    """Element rows in reading order."""

    def __init__(self):
        self.chunks: list = []

    def add(self, kind: str, name: str, nodes: tuple[str, ...], value: float, model: str, origin) -> None:
        """One element; ``origin`` is the card (file, line) that errors about it point at."""
        if not self.chunks or not isinstance(self.chunks[-1], _GeneralChunk):
            self.chunks.append(_GeneralChunk())
        chunk = self.chunks[-1]
        chunk.kind.append(KIND_INDEX[kind])
        chunk.name.append(name)
        chunk.nodes.append(nodes)
        chunk.value.append(value)
        chunk.model.append(model)
        chunk.where.append((origin.file, origin.line))

    def add_fast(self, chunk: FastChunk) -> None:
        if len(chunk.kind):
            self.chunks.append(chunk)

    def __len__(self) -> int:
        return sum(len(c.kind) for c in self.chunks)


def _fast_pool(chunks: list[FastChunk]) -> tuple[np.ndarray, dict[int, int]]:
    """One byte pool for all fast chunks' buffers; base offset per buffer (by id)."""
    buffers: dict[int, np.ndarray] = {}
    for chunk in chunks:
        buffers.setdefault(id(chunk.buf), chunk.buf)
    if len(buffers) == 1:
        (key, buf), = buffers.items()
        return buf, {key: 0}
    bases, offset = {}, 0
    for key, buf in buffers.items():
        bases[key] = offset
        offset += len(buf)
    return np.concatenate(list(buffers.values())), bases


def _spans(chunks: list[FastChunk], bases: dict[int, int], start: str, end: str) -> tuple[np.ndarray, np.ndarray]:
    """Span arrays ``start``/``end`` (attribute names) of the chunks, flattened, offset into the pool."""
    parts = [(getattr(ch, start).reshape(-1), getattr(ch, end).reshape(-1), bases[id(ch.buf)]) for ch in chunks]
    if len(parts) == 1 and parts[0][2] == 0:
        return parts[0][0], parts[0][1]
    shifted = [(s + b * (s >= 0), e + b * (s >= 0)) for s, e, b in parts]
    return np.concatenate([s for s, _ in shifted]), np.concatenate([e for _, e in shifted])


def _node_ids(c: Circuit, rows: Rows) -> list[np.ndarray]:
    """(m, 4) node ids per chunk (0 where unused), numbering nodes by first appearance."""
    fast = [chunk for chunk in rows.chunks if isinstance(chunk, FastChunk)]
    if fast:
        from . import fastpath  # Numba: imported only when the fast path ran

        pool, bases = _fast_pool(fast)
        starts, ends = _spans(fast, bases, "node_start", "node_end")  # row-major: reading order
        local, first, _, _ = fastpath.intern(pool, starts, ends, 1024)
        names = fastpath.strings(pool, starts[first], ends[first])
        fmap = np.zeros(len(first) + 1, np.int64)  # fmap[-1] = 0 for unused node columns
        bounds = np.cumsum([0] + [4 * len(ch.kind) for ch in fast])
    out, k = [], 0
    for chunk in rows.chunks:
        if isinstance(chunk, _GeneralChunk):
            ids = np.zeros((len(chunk.kind), 4), np.int64)
            flat = [n for nodes in chunk.nodes for n in nodes]
            created = c.nodes_of(flat)
            mask = np.zeros(ids.shape, bool)
            for i, nodes in enumerate(chunk.nodes):
                mask[i, :len(nodes)] = True
            ids[mask] = created
        else:
            lo, hi = np.searchsorted(first, [bounds[k], bounds[k + 1]])
            fmap[lo:hi] = c.nodes_of(names[lo:hi].tolist())
            ids = fmap[local[bounds[k]:bounds[k + 1]]].reshape(-1, 4)
            k += 1
        out.append(ids)
    return out


def _name(chunk, i: int) -> str:
    if isinstance(chunk, _GeneralChunk):
        return chunk.name[i]
    from . import fastpath

    return str(fastpath.strings(chunk.buf, chunk.name_start[i:i + 1], chunk.name_end[i:i + 1])[0])


def _where(chunk, i: int) -> tuple[str, int]:
    return chunk.where[i] if isinstance(chunk, _GeneralChunk) else (chunk.file, int(chunk.line[i]))


def _first_duplicate(rows: Rows) -> tuple[int, int] | None:
    """(earlier, later) row positions (reading order) of two elements with the same name, or None."""
    general: dict[str, int] = {}  # name -> position, for rows of general chunks
    pairs = []
    offsets = np.cumsum([0] + [len(chunk.kind) for chunk in rows.chunks])
    for chunk, offset in zip(rows.chunks, offsets):
        if isinstance(chunk, _GeneralChunk):
            for i, name in enumerate(chunk.name):
                earlier = general.setdefault(name, offset + i)
                if earlier != offset + i:
                    pairs.append((earlier, offset + i))
    fast = [(chunk, offset) for chunk, offset in zip(rows.chunks, offsets) if isinstance(chunk, FastChunk)]
    if fast:
        from . import fastpath

        pool, bases = _fast_pool([chunk for chunk, _ in fast])
        starts, ends = _spans([chunk for chunk, _ in fast], bases, "name_start", "name_end")
        names = list(general)
        encoded = [n.encode("utf-8") for n in names]
        lengths = np.array([len(e) for e in encoded], dtype=np.int64)
        q_ends = np.cumsum(lengths)
        q_starts = q_ends - lengths
        q_pool = np.frombuffer(b"".join(encoded), np.uint8)
        # quick test on sorted 64-bit hashes; equal hashes (a duplicate, or a collision) take the exact path
        hashes = np.sort(fastpath.hashes(pool, starts, ends))
        q_hashes = fastpath.hashes(q_pool, q_starts, q_ends)
        at = np.minimum(np.searchsorted(hashes, q_hashes), len(hashes) - 1)
        if np.any(hashes[1:] == hashes[:-1]) or np.any(hashes[at] == q_hashes):
            position = np.concatenate([offset + np.arange(len(chunk.kind)) for chunk, offset in fast])
            ids, first, table, table_hashes = fastpath.intern(pool, starts, ends, len(starts))
            if len(first) < len(ids):
                later = int(np.flatnonzero(first[ids] != np.arange(len(ids)))[0])
                pairs.append((int(position[first[ids[later]]]), int(position[later])))
            found = fastpath.lookup(table, table_hashes, first, pool, starts, ends, q_pool, q_starts, q_ends)
            for name, u in zip(names, found.tolist()):
                if u >= 0:
                    pairs.append(tuple(sorted((int(position[first[u]]), general[name]))))
    return min(pairs, key=lambda pair: pair[1]) if pairs else None


def _check_duplicates(rows: Rows) -> None:
    """NetlistError at the later of two elements with the same name (after flattening, any kinds)."""
    pair = _first_duplicate(rows)
    if pair is None:
        return
    sizes = np.cumsum([0] + [len(chunk.kind) for chunk in rows.chunks])
    (c1, i1), (c2, i2) = ((int(np.searchsorted(sizes, j, "right")) - 1, j) for j in pair)
    chunk1, chunk2 = rows.chunks[c1], rows.chunks[c2]
    first_file, first_line = _where(chunk1, i1 - sizes[c1])
    file, line = _where(chunk2, i2 - sizes[c2])
    raise NetlistError(f"duplicate element name {_name(chunk2, i2 - sizes[c2])!r} "
                       f"(first defined at {first_file}:{first_line})", file, line)


def _join(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def build_circuit(rows: Rows, title: str) -> Circuit:
    """The Circuit of ``rows`` (elements in reading order, nodes numbered by first appearance)."""
    c = Circuit(title)
    _check_duplicates(rows)
    ids = _node_ids(c, rows)
    for kind_name in KINDS:
        code, n_cols = KIND_INDEX[kind_name], len(NODE_COLUMNS[kind_name])
        names, nodes, values, models = [], [], [], []
        for chunk, chunk_ids in zip(rows.chunks, ids):
            sel = np.flatnonzero(np.asarray(chunk.kind) == code)
            if len(sel) == 0:
                continue
            if sel[-1] - sel[0] + 1 == len(sel):  # one block of rows: slice, no copy
                sel = slice(int(sel[0]), int(sel[-1]) + 1)
            if isinstance(chunk, _GeneralChunk):
                names.append(np.array(chunk.name, dtype=str)[sel])
                values.append(np.asarray(chunk.value, np.float64)[sel])
                models.append(np.array(chunk.model, dtype=str)[sel])
            else:
                from . import fastpath

                names.append(fastpath.strings(chunk.buf, chunk.name_start[sel], chunk.name_end[sel]))
                values.append(chunk.value[sel])
                models.append(chunk.model[sel])
            nodes.append(chunk_ids[sel, :n_cols])
        if names:
            c.add_many(kind_name, _join(names), np.ascontiguousarray(_join(nodes)), _join(values),
                       _join(models) if kind_name == "D" else None, lower=False)
    return c
