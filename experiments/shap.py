"""Exact SHAP contributions of a LightGBM model, the numbers ``pred_contrib=True`` gives, faster.

LightGBM's TreeSHAP (``predict(..., pred_contrib=True)``) walks every tree of every row with
the path-extension recursion of Lundberg et al.: about ``leaves × depth²`` work per tree. This
module computes the same values, exactly, with the integral form of the Shapley weights (the
idea of "Linear TreeShap", Yu et al., NeurIPS 2022):

for a leaf ``l`` with value ``v``, reached through the distinct features ``U`` of its path, a
row's SHAP value of feature ``i`` in ``U`` is

    v · (o_i − z_i) · ∫₀¹ Π_{j ∈ U, j ≠ i} (z_j + t · (o_j − z_j)) dt

where ``z_j`` is the share of training rows that followed the path's splits on ``j`` (product
of the cover ratios) and ``o_j`` is 1 when the row itself satisfies all of them, else 0. The
weights ``|S|!(|U|−|S|−1)!/|U|!`` of the Shapley formula are the Beta integrals
``∫ t^|S| (1−t)^(|U|−|S|−1) dt``, which is why the sum over coalitions becomes one integral of
a polynomial of degree ``|U| − 1``. Gauss-Legendre quadrature with ``ceil(max |U| / 2)``
points integrates it without error (only float rounding remains), so the values equal
LightGBM's to about 1e-13 (the tests hold them within 1e-9 of ``pred_contrib``).

Per row and tree the integrand is evaluated at the quadrature points in one pass down the tree
(the running product of the path's factors) and one pass up (each node's sum over the leaves
below it): ``nodes × points`` work instead of ``leaves × depth²``, in a small kernel compiled
by llvmlite (already a dependency through lleaves; one generic kernel per number of points,
about 0.05 s to compile, whatever the model; ``risk.native``) and run on row blocks in
parallel threads.
Which way each row goes at every split follows LightGBM's rules (|x| <= 1e-35 is 0, missing
types None/Zero/NaN with the default side, categorical bitsets): numerical splits are decided
in the kernel, categorical ones with NumPy (``categorical_decisions``); ``decisions`` (NumPy,
every split) is held to LightGBM's ``pred_leaf`` by the tests, and the contributions to
``pred_contrib`` within 1e-9 (measured: under 1e-13).

Measured (2-core shared machine, one thread): the benchmark's 88-tree model, 1,335 rows,
0.08 CPU-s against LightGBM's 0.92; the kcs preset's 869 × 255-leaf model 5.8 ms a row
against 56 ms. Laying a model out (``from_booster``) costs 0.03 s for the former and about
1.5 s for the latter, once per booster per process (``forest_for``).

``ShapForest.from_booster(booster)`` returns None for models it does not cover (several trees
per iteration, linear trees, a node with zero training rows): callers then use
``pred_contrib``. ``RISK_EXACT_SHAP=false`` turns this path off.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import weakref
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import lightgbm as lgb

logger = logging.getLogger(__name__)

# LightGBM's kZeroThreshold (a float constant widened to double): |x| <= this is "zero".
ZERO_THRESHOLD = float(np.float32(1e-35))
# Rows per kernel call (a unit of work of a thread).
ROW_BLOCK = 64
# Rows the kernel walks through each node together (see ``_kernel_ir``).
GROUP = 8
ENV_SWITCH = "RISK_EXACT_SHAP"


@dataclass(frozen=True)
class ShapForest:
    """A LightGBM model laid out for the SHAP kernel (see the module docstring).

    Nodes of all trees, each tree in preorder from its root: ``parent`` and ``prev`` are
    indices within the tree (``prev``: the nearest ancestor edge splitting on the same feature,
    or the root), ``feature`` the split feature of the edge into the node, ``cover`` its ``z``
    (merged over repeated splits on that feature), ``decision`` the global index of the parent
    split and ``side`` 1 for a left child; ``value`` and ``leaf`` for leaves. For the kernel,
    per node: ``1/g`` and ``(1 − z)/g`` of a hot edge at the quadrature points (the root:
    1 and 0, "no earlier split on this feature") and ``1/z``. The split arrays
    (``split_feature`` ... ``cat_bits``) decide which way rows go (``decisions``).
    """

    num_features: int
    bias: float
    points: int
    tree_start: npt.NDArray[np.int64]
    parent: npt.NDArray[np.int32]
    prev: npt.NDArray[np.int32]
    feature: npt.NDArray[np.int32]
    cover: npt.NDArray[np.float64]
    hot_inverse: npt.NDArray[np.float64]
    hot_coefficient: npt.NDArray[np.float64]
    cover_inverse: npt.NDArray[np.float64]
    decision: npt.NDArray[np.int32]
    side: npt.NDArray[np.int8]
    value: npt.NDArray[np.float64]
    leaf: npt.NDArray[np.int8]
    split_feature: npt.NDArray[np.int64]
    threshold: npt.NDArray[np.float64]
    decision_type: npt.NDArray[np.int64]
    split_start: npt.NDArray[np.int64]
    split_feature32: npt.NDArray[np.int32]
    missing_type: npt.NDArray[np.int8]
    default_left: npt.NDArray[np.int8]
    cat_column: npt.NDArray[np.int32]
    cat_offset: npt.NDArray[np.int64]
    cat_words: npt.NDArray[np.int64]
    cat_bits: npt.NDArray[np.uint32]

    @property
    def max_tree_nodes(self) -> int:
        return int(np.max(np.diff(self.tree_start))) if len(self.tree_start) > 1 else 1

    @classmethod
    def from_booster(cls, booster: lgb.Booster) -> ShapForest | None:
        """The booster's trees as ``predict`` uses them (its best iteration, if any); None
        where the model is outside what this module computes."""
        return cls.from_model_text(booster.model_to_string())

    @classmethod
    def from_model_text(cls, text: str) -> ShapForest | None:
        header, _, body = text.partition("\nTree=")
        fields = _header_fields(header)
        if fields.get("num_tree_per_iteration", "1") != "1" or not body:
            return None
        num_features = int(fields["max_feature_idx"]) + 1
        builder = _Builder()
        for block in ("Tree=" + body).split("\nTree=")[0:]:
            tree = _tree_fields(block.split("end of trees", 1)[0])
            if not tree:
                continue
            if tree.get("is_linear", "0") != "0" or not builder.add(tree):
                return None
        return builder.forest(num_features)

    # --- decisions ------------------------------------------------------------------------
    def decisions(self, matrix: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
        """1 where the row goes left at the split (rows × all splits of all trees), by
        LightGBM's rules: NaN counts as 0 unless the split's missing type is NaN; a missing
        value (NaN, or zero for missing type Zero) takes the default side; categorical splits
        send NaN and negative values right and the listed categories left. (The kernel
        decides numerical splits itself, by the same rules; the tests hold this function to
        LightGBM's ``pred_leaf``.)"""
        values = np.asarray(matrix, dtype=np.float64)[:, self.split_feature]
        # LightGBM reads |x| <= kZeroThreshold as an absent value, that is 0.
        values = np.where(np.abs(values) <= ZERO_THRESHOLD, 0.0, values)
        kind = self.decision_type
        missing_type = (kind >> 2) & 3
        default_left = ((kind >> 1) & 1).astype(bool)
        is_nan = np.isnan(values)
        values = np.where(is_nan & (missing_type != 2), 0.0, values)
        missing = ((missing_type == 1) & (np.abs(values) <= ZERO_THRESHOLD)) | (
            (missing_type == 2) & is_nan
        )
        with np.errstate(invalid="ignore"):
            left = np.where(missing, default_left, values <= self.threshold)
        categorical = np.flatnonzero(kind & 1)
        if len(categorical):
            left[:, categorical] = self.categorical_decisions(matrix).astype(bool)
        return left.astype(np.uint8)

    def categorical_decisions(self, matrix: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
        """``decisions`` of the categorical splits only (rows × categorical splits, in the
        order of ``cat_column``): the listed categories go left; NaN and negatives right."""
        categorical = np.flatnonzero(self.decision_type & 1)
        raw = np.asarray(matrix, dtype=np.float64)[:, self.split_feature[categorical]]
        raw = np.where(np.isnan(raw), -1.0, raw)
        code = np.trunc(np.clip(raw, -1.0, 2.0**31 - 1)).astype(np.int64)
        words = self.cat_words[categorical]
        word = code >> 5
        inside = (code >= 0) & (word < words)
        at = self.cat_offset[categorical] + np.clip(word, 0, np.maximum(words - 1, 0))
        bits = self.cat_bits[at].astype(np.int64)
        return (inside & (((bits >> (code & 31)) & 1) == 1)).astype(np.uint8)

    def _tables(self) -> tuple[int, ...]:
        """Pointers to the node arrays the kernel reads, in its argument order."""
        arrays = (
            self.tree_start,
            self.parent,
            self.prev,
            self.feature,
            self.cover,
            self.hot_inverse,
            self.hot_coefficient,
            self.cover_inverse,
            self.decision,
            self.side,
            self.value,
            self.leaf,
            self.split_start,
            self.split_feature32,
            self.threshold,
            self.missing_type,
            self.default_left,
            self.cat_column,
        )
        return tuple(_ptr(array) for array in arrays)

    # --- contributions --------------------------------------------------------------------
    def contributions(self, matrix: npt.NDArray[Any], num_threads: int = 0) -> np.ndarray:
        """Rows × (features + 1): each feature's SHAP value and, last, the expected value;
        the layout of ``pred_contrib=True``."""
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[1] != self.num_features:
            raise ValueError(
                f"expected rows of {self.num_features} features, got shape {matrix.shape}"
            )
        rows = matrix.shape[0]
        out = np.zeros((rows, self.num_features + 1))
        out[:, -1] = self.bias
        if rows == 0:
            return out
        kernel = _kernel(self.points)
        _, weights = quadrature(self.points)
        blocks = [(start, min(start + ROW_BLOCK, rows)) for start in range(0, rows, ROW_BLOCK)]
        threads = max(1, min(num_threads or (os.cpu_count() or 1), len(blocks)))
        local = threading.local()
        tables = self._tables()

        def run(block: tuple[int, int]) -> None:
            start, stop = block
            scratch = getattr(local, "scratch", None)
            if scratch is None:
                scratch = local.scratch = _Scratch(
                    self.max_tree_nodes, self.points, ROW_BLOCK, self.num_features
                )
            values = np.ascontiguousarray(matrix[start:stop], dtype=np.float64)
            categorical = np.ascontiguousarray(self.categorical_decisions(values))
            sums = scratch.sums[: stop - start]
            sums.fill(0.0)
            kernel(
                stop - start,
                len(self.tree_start) - 1,
                *tables,
                _ptr(values),
                values.shape[1],
                _ptr(categorical),
                categorical.shape[1],
                _ptr(sums),
                self.num_features,
                *scratch.pointers(),
            )
            out[start:stop, :-1] = sums @ weights

        if threads == 1:
            for block in blocks:
                run(block)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(run, blocks))
        return out


def enabled() -> bool:
    """``RISK_EXACT_SHAP`` (``risk.settings``: true unless set to a false value)."""
    from risk.settings import get_settings

    return get_settings().exact_shap


_FORESTS: weakref.WeakKeyDictionary[Any, ShapForest | None] = weakref.WeakKeyDictionary()


def forest_for(booster: lgb.Booster) -> ShapForest | None:
    """The booster's ``ShapForest``, built once per booster object and kernel compiled; None
    when switched off (``RISK_EXACT_SHAP``), for a model this module does not cover, or where
    the kernel cannot be compiled here (logged once): callers then use ``pred_contrib``."""
    if not enabled():
        return None
    with _LOCK:
        if booster in _FORESTS:
            return _FORESTS[booster]
    try:
        forest = ShapForest.from_booster(booster)
        if forest is not None:
            _kernel(forest.points)
    except Exception as error:  # a JIT that fails here must not stop the reasons
        logger.warning("exact SHAP kernel unavailable (%s); using LightGBM pred_contrib", error)
        forest = None
    with _LOCK:
        _FORESTS[booster] = forest
    return forest


# --- model text ---------------------------------------------------------------------------
def _header_fields(header: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in header.splitlines() if "=" in line)


def _tree_fields(block: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in block.splitlines()[1:] if "=" in line)


def _array(fields: dict[str, str], key: str, dtype: Any) -> np.ndarray:
    text = fields.get(key, "")
    return np.array(text.split(), dtype=dtype) if text else np.zeros(0, dtype=dtype)


class _Builder:
    """Collects the trees' nodes in preorder (see ``ShapForest``)."""

    def __init__(self) -> None:
        # C arrays, not lists: a deep model has hundreds of thousands of nodes.
        self.parent = array("i")
        self.prev = array("i")
        self.feature = array("i")
        self.cover = array("d")
        self.decision = array("i")
        self.side = array("b")
        self.value = array("d")
        self.leaf = array("b")
        self.tree_start = [0]
        self.split_start = [0]
        self.split_feature: list[np.ndarray] = []
        self.threshold: list[np.ndarray] = []
        self.decision_type: list[np.ndarray] = []
        self.cat_offset: list[np.ndarray] = []
        self.cat_words: list[np.ndarray] = []
        self.cat_bits: list[np.ndarray] = []
        self.splits = 0
        self.bits = 0
        self.bias = 0.0
        self.max_unique = 1

    def add(self, tree: dict[str, str]) -> bool:
        leaves = int(tree["num_leaves"])
        leaf_value = _array(tree, "leaf_value", np.float64)
        if leaves == 1:
            self.bias += float(leaf_value[0])
            self._node(0, 0, 0, 1.0, 0, 0, float(leaf_value[0]), 1)
            self.tree_start.append(len(self.parent))
            self.split_start.append(self.splits)
            return True
        split_feature = _array(tree, "split_feature", np.int64)
        threshold = _array(tree, "threshold", np.float64)
        kind = _array(tree, "decision_type", np.int64)
        left_child = _array(tree, "left_child", np.int64)
        right_child = _array(tree, "right_child", np.int64)
        leaf_count = _array(tree, "leaf_count", np.float64)
        internal_count = _array(tree, "internal_count", np.float64)
        if np.any(leaf_count <= 0) or np.any(internal_count <= 0):
            return False
        boundaries = _array(tree, "cat_boundaries", np.int64)
        bits = _array(tree, "cat_threshold", np.uint32)
        categorical = (kind & 1).astype(bool)
        cat_index = np.where(categorical, threshold, 0).astype(np.int64)
        offset = np.zeros(leaves - 1, dtype=np.int64)
        words = np.zeros(leaves - 1, dtype=np.int64)
        if categorical.any():
            offset[categorical] = self.bits + boundaries[cat_index[categorical]]
            words[categorical] = (
                boundaries[cat_index[categorical] + 1] - boundaries[cat_index[categorical]]
            )
        self.split_feature.append(split_feature)
        self.threshold.append(np.where(categorical, 0.0, threshold))
        self.decision_type.append(kind)
        self.cat_offset.append(offset)
        self.cat_words.append(words)
        self.cat_bits.append(bits)
        # LightGBM's expected value: leaves weighted by their share of the root's rows.
        self.bias += float(np.sum(leaf_value * leaf_count) / internal_count[0])

        base = self.splits
        start = len(self.parent)
        self._node(0, 0, 0, 1.0, 0, 0, 0.0, 0)  # the root; its cover 1 and "prev" role

        # Python numbers once (NumPy scalars per node cost more than the walk itself).
        features = split_feature.tolist()
        lefts, rights = left_child.tolist(), right_child.tolist()
        leaf_values, leaf_counts = leaf_value.tolist(), leaf_count.tolist()
        internal_counts = internal_count.tolist()
        covers = self.cover
        # On the path to the current node: the latest edge splitting on each feature (index
        # within the tree, 0: none), and how many distinct features the path has.
        latest: dict[int, int] = {}
        distinct = 0

        def visit(node: int, here: int) -> None:
            # Preorder: the left child, its subtree, then the right child and its subtree.
            nonlocal distinct
            feature = features[node]
            total = internal_counts[node]
            prev = latest.get(feature, 0)
            prev_cover = covers[start + prev] if prev else 1.0
            distinct += not prev
            for child, side in ((lefts[node], 1), (rights[node], 0)):
                index = len(self.parent) - start
                if child < 0:
                    cover = leaf_counts[~child] / total * prev_cover
                    value = leaf_values[~child]
                    self._node(here, prev, feature, cover, base + node, side, value, 1)
                    self.max_unique = max(self.max_unique, distinct)
                else:
                    cover = internal_counts[child] / total * prev_cover
                    self._node(here, prev, feature, cover, base + node, side, 0.0, 0)
                    latest[feature] = index
                    visit(child, index)
            latest[feature] = prev
            if not prev:
                del latest[feature]
            distinct -= not prev

        visit(0, 0)
        self.splits += leaves - 1
        self.bits += len(bits)
        self.tree_start.append(len(self.parent))
        self.split_start.append(self.splits)
        return True

    def _node(
        self,
        parent: int,
        prev: int,
        feature: int,
        cover: float,
        decision: int,
        side: int,
        value: float,
        leaf: int,
    ) -> None:
        self.parent.append(parent)
        self.prev.append(prev)
        self.feature.append(feature)
        self.cover.append(cover)
        self.decision.append(decision)
        self.side.append(side)
        self.value.append(value)
        self.leaf.append(leaf)

    def forest(self, num_features: int) -> ShapForest:
        def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        points = (self.max_unique + 1) // 2
        t, _ = quadrature(points)
        z = np.asarray(self.cover, dtype=np.float64)
        hot = z[:, None] + t[None, :] * (1.0 - z[:, None])
        hot_inverse = 1.0 / hot
        hot_coefficient = (1.0 - z[:, None]) / hot
        roots = np.asarray(self.tree_start[:-1], dtype=np.int64)
        hot_inverse[roots] = 1.0
        hot_coefficient[roots] = 0.0
        kind = cat(self.decision_type, np.int64)
        categorical = np.flatnonzero(kind & 1)
        cat_column = np.full(len(kind), -1, dtype=np.int32)
        cat_column[categorical] = np.arange(len(categorical), dtype=np.int32)
        return ShapForest(
            num_features=num_features,
            bias=self.bias,
            points=points,
            tree_start=np.asarray(self.tree_start, dtype=np.int64),
            parent=np.asarray(self.parent, dtype=np.int32),
            prev=np.asarray(self.prev, dtype=np.int32),
            feature=np.asarray(self.feature, dtype=np.int32),
            cover=z,
            hot_inverse=np.ascontiguousarray(hot_inverse),
            hot_coefficient=np.ascontiguousarray(hot_coefficient),
            cover_inverse=1.0 / z,
            decision=np.asarray(self.decision, dtype=np.int32),
            side=np.asarray(self.side, dtype=np.int8),
            value=np.asarray(self.value, dtype=np.float64),
            leaf=np.asarray(self.leaf, dtype=np.int8),
            split_feature=cat(self.split_feature, np.int64),
            threshold=cat(self.threshold, np.float64),
            decision_type=kind,
            split_start=np.asarray(self.split_start, dtype=np.int64),
            split_feature32=cat(self.split_feature, np.int32),
            missing_type=((kind >> 2) & 3).astype(np.int8),
            default_left=((kind >> 1) & 1).astype(np.int8),
            cat_column=cat_column,
            cat_offset=cat(self.cat_offset, np.int64),
            cat_words=cat(self.cat_words, np.int64),
            cat_bits=cat(self.cat_bits, np.uint32) if self.cat_bits else np.zeros(1, np.uint32),
        )


# --- the kernel ---------------------------------------------------------------------------
class _Scratch:
    """One thread's working arrays: per node of a tree, the path product and the sum over the
    leaves below it at each quadrature point, and ``o``; per row and feature, the integrand's
    sums at each point (weighted and summed by the caller)."""

    def __init__(self, nodes: int, points: int, rows: int, features: int) -> None:
        self.product = np.zeros((nodes, GROUP, points))
        self.below = np.zeros((nodes, GROUP, points))
        self.one = np.zeros((nodes, GROUP), dtype=np.int8)
        self.left = np.zeros((nodes, GROUP), dtype=np.int8)  # a tree has nodes // 2 splits
        self.sums = np.zeros((rows, features, points))

    def pointers(self) -> tuple[int, int, int, int]:
        return _ptr(self.product), _ptr(self.below), _ptr(self.one), _ptr(self.left)


def _ptr(array: np.ndarray) -> int:
    assert array.flags.c_contiguous
    return int(array.ctypes.data)


_ARGUMENTS = [
    ctypes.c_int64,  # rows
    ctypes.c_int64,  # trees
    *[ctypes.c_void_p] * 18,  # tree_start, parent, prev, feature, cover, hot_inverse,
    # hot_coefficient, cover_inverse, decision, side, value, leaf, split_start,
    # split_feature, threshold, missing_type, default_left, cat_column
    ctypes.c_void_p,  # the rows (float64, rows × columns)
    ctypes.c_int64,  # columns
    ctypes.c_void_p,  # categorical decisions (rows × categorical splits, 1 = left)
    ctypes.c_int64,  # categorical splits
    ctypes.c_void_p,  # sums (rows × features × points)
    ctypes.c_int64,  # features
    *[ctypes.c_void_p] * 4,  # scratch: product, below, one, left
]
_LOCK = threading.RLock()


def quadrature(points: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1]: exact for polynomials of degree
    ``2 * points - 1``."""
    x, w = np.polynomial.legendre.leggauss(points)
    return (x + 1.0) / 2.0, w / 2.0


@cache
def _kernel(points: int) -> Any:
    """The compiled kernel for ``points`` quadrature points (compiled once per process)."""
    from risk.native import compile_ir

    return compile_ir(_kernel_ir(points), "treeshap", None, _ARGUMENTS)


def _kernel_ir(points: int) -> str:
    """LLVM IR of the kernel (see the module docstring). For each tree, and each row of the
    block: a pass down the nodes in preorder (the path product ``P`` at the quadrature
    points: ``P[node] = P[parent] · g_node / g_prev``, where ``g = z + t·(o − z)`` and
    ``prev`` is the earlier split on the same feature, whose factor the node's replaces) and a
    pass up in reverse preorder (``S[node]``: the sum of ``v · P`` over the leaves below;
    feature ``i`` of the edge gains ``S · ((o − z)/g − (o_prev − z_prev)/g_prev)``).

    ``1/g`` and ``(o − z)/g`` need no division: for a cold edge (``o = 0``) they are
    ``1/(z·(1 − t))`` and ``−1/(1 − t)``; for a hot one they are tabled per node
    (``hot_inverse``, ``hot_coefficient``). The tree's root stands for "no earlier split":
    ``o = 1``, ``1/g = 1``, coefficient 0.
    """
    from llvmlite import ir

    nodes_t, _ = quadrature(points)
    f64, i64, i32, i8, i1 = (
        ir.DoubleType(),
        ir.IntType(64),
        ir.IntType(32),
        ir.IntType(8),
        ir.IntType(1),
    )
    vec = ir.VectorType(f64, points)
    p64, p32, p8 = f64.as_pointer(), i32.as_pointer(), i8.as_pointer()
    args = [i64, i64, i64.as_pointer(), p32, p32, p32, p64, p64, p64, p64, p32, p8, p64, p8]
    args += [i64.as_pointer(), p32, p64, p8, p8, p32]
    args += [p64, i64, p8, i64, p64, i64, p64, p64, p8, p8]
    module = ir.Module(name="treeshap")
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), args), name="treeshap")
    (
        rows, trees, tree_start, parent, prev, feature, cover, hot_inverse, hot_coefficient,
        cover_inverse, decision, side, value, leaf, split_start, split_feature, threshold,
        missing_type, default_left, cat_column, matrix, columns, categorical, categorical_count,
        sums, features, product, below, one, left,
    ) = function.args  # fmt: skip
    for argument in function.args:
        if isinstance(argument.type, ir.PointerType):
            argument.attributes.add("noalias")
    b = ir.IRBuilder(function.append_basic_block("entry"))

    t_vec = ir.Constant(vec, [float(v) for v in nodes_t])
    cold = ir.Constant(vec, [float(1.0 / (1.0 - v)) for v in nodes_t])
    minus_cold = ir.Constant(vec, [float(-1.0 / (1.0 - v)) for v in nodes_t])
    ones = ir.Constant(vec, [1.0] * points)
    zeros = ir.Constant(vec, [0.0] * points)
    mask = ir.Constant(ir.VectorType(i32, points), [0] * points)
    width = ir.Constant(i64, points)
    zero64, one64 = ir.Constant(i64, 0), ir.Constant(i64, 1)

    def splat(value: Any) -> Any:
        lane = b.insert_element(ir.Constant(vec, ir.Undefined), value, ir.Constant(i32, 0))
        return b.shuffle_vector(lane, ir.Constant(vec, ir.Undefined), mask)

    def load(pointer: Any, index: Any) -> Any:
        return b.load(b.gep(pointer, [index]))

    def at(array: Any, index: Any) -> Any:
        # Row ``index`` of a (n × points) float64 array, as a vector (8-byte aligned).
        return b.bitcast(b.gep(array, [b.mul(index, width)]), vec.as_pointer())

    def get(array: Any, index: Any) -> Any:
        return b.load(at(array, index), align=8)

    def put(value: Any, array: Any, index: Any) -> None:
        b.store(value, at(array, index), align=8)

    def counted(start: Any, stop: Any, body: Any) -> None:
        before = b.block
        head = function.append_basic_block()
        loop = function.append_basic_block()
        done = function.append_basic_block()
        b.branch(head)
        b.position_at_end(head)
        index = b.phi(i64)
        index.add_incoming(start, before)
        b.cbranch(b.icmp_signed("<", index, stop), loop, done)
        b.position_at_end(loop)
        body(index)
        index.add_incoming(b.add(index, one64), b.block)
        b.branch(head)
        b.position_at_end(done)

    group = ir.Constant(i64, GROUP)

    def slot(k: Any, r: Any) -> Any:
        # Node ``k`` of row ``r`` of the group in the scratch arrays (node-major).
        return b.add(b.mul(k, group), r)

    # Trees outer: a tree's nodes stay in cache while every row of the block walks them (the
    # node data of a large model is far bigger than the cache). Rows in groups of GROUP, the
    # innermost loop: each row's pass is a chain of dependent loads and multiplications, and
    # the rows of a group are independent, so the processor overlaps them.
    def tree_body(tree: Any) -> None:
        start = load(tree_start, tree)
        count = b.sub(load(tree_start, b.add(tree, one64)), start)
        groups = b.udiv(b.add(rows, ir.Constant(i64, GROUP - 1)), group)
        split_base = load(split_start, tree)
        split_count = b.sub(load(split_start, b.add(tree, one64)), split_base)

        def group_body(index: Any) -> None:
            first = b.mul(index, group)
            left_over = b.sub(rows, first)
            members = b.select(b.icmp_signed("<", left_over, group), left_over, group)

            def root(r: Any) -> None:
                put(ones, product, r)
                put(zeros, below, r)
                b.store(ir.Constant(i8, 1), b.gep(one, [r]))

            counted(zero64, members, root)

            # Which way each row of the group goes at each split of the tree.
            def decide(j: Any) -> None:
                split = b.add(split_base, j)
                column = b.sext(load(split_feature, split), i64)
                limit = load(threshold, split)
                kind = load(missing_type, split)
                default = load(default_left, split)
                category = b.sext(load(cat_column, split), i64)
                is_categorical = b.icmp_signed(">=", category, zero64)
                category = b.select(is_categorical, category, zero64)
                nan_missing = b.icmp_unsigned("==", kind, ir.Constant(i8, 2))
                zero_missing = b.icmp_unsigned("==", kind, ir.Constant(i8, 1))

                def row(r: Any) -> None:
                    at = b.add(first, r)
                    x = load(matrix, b.add(b.mul(at, columns), column))
                    is_nan = b.fcmp_unordered("uno", x, x)
                    # |x| <= kZeroThreshold is an absent value to LightGBM, so 0; so is NaN
                    # unless the split's missing type is NaN.
                    is_zero = b.and_(
                        b.fcmp_ordered(">=", x, ir.Constant(f64, -ZERO_THRESHOLD)),
                        b.fcmp_ordered("<=", x, ir.Constant(f64, ZERO_THRESHOLD)),
                    )
                    nan_as_zero = b.and_(is_nan, b.not_(nan_missing))
                    is_zero = b.or_(is_zero, nan_as_zero)
                    x = b.select(is_zero, ir.Constant(f64, 0.0), x)
                    missing = b.or_(b.and_(zero_missing, is_zero), b.and_(nan_missing, is_nan))
                    below_limit = b.zext(b.fcmp_ordered("<=", x, limit), i8)
                    numerical = b.select(missing, default, below_limit)
                    listed = load(categorical, b.add(b.mul(at, categorical_count), category))
                    went_left = b.select(is_categorical, listed, numerical)
                    b.store(went_left, b.gep(left, [slot(j, r)]))

                counted(zero64, members, row)

            counted(zero64, split_count, decide)

            def down(k: Any) -> None:
                node = b.add(start, k)
                up = b.sext(load(parent, node), i64)
                before = b.sext(load(prev, node), i64)
                split = b.sub(b.sext(load(decision, node), i64), split_base)
                to_left = load(side, node)
                z = splat(load(cover, node))
                previous = b.add(start, before)
                cold_inverse = b.fmul(splat(load(cover_inverse, previous)), cold)
                hot_inverse_before = get(hot_inverse, previous)

                def row(r: Any) -> None:
                    went_left = load(left, slot(split, r))
                    hot = b.icmp_unsigned("==", went_left, to_left)
                    earlier = b.trunc(load(one, slot(before, r)), i1)
                    o = b.and_(hot, earlier)
                    b.store(b.zext(o, i8), b.gep(one, [slot(k, r)]))
                    g = b.fadd(z, b.fmul(t_vec, b.fsub(splat(b.uitofp(o, f64)), z)))
                    replaced = b.select(earlier, hot_inverse_before, cold_inverse)
                    path = b.fmul(b.fmul(get(product, slot(up, r)), g), replaced)
                    put(path, product, slot(k, r))
                    put(zeros, below, slot(k, r))

                counted(zero64, members, row)

            counted(one64, count, down)

            def up_pass(j: Any) -> None:
                k = b.sub(count, b.add(j, one64))
                node = b.add(start, k)
                up = b.sext(load(parent, node), i64)
                before = b.sext(load(prev, node), i64)
                is_leaf = b.trunc(load(leaf, node), i1)
                leaf_value = splat(load(value, node))
                coefficient_here = get(hot_coefficient, node)
                coefficient_before = get(hot_coefficient, b.add(start, before))
                column = b.mul(b.sext(load(feature, node), i64), width)

                def row(r: Any) -> None:
                    here = slot(k, r)
                    total = b.select(
                        is_leaf, b.fmul(leaf_value, get(product, here)), get(below, here)
                    )
                    above = slot(up, r)
                    put(b.fadd(get(below, above), total), below, above)
                    o_here = b.trunc(load(one, here), i1)
                    o_before = b.trunc(load(one, slot(before, r)), i1)
                    coefficient = b.fsub(
                        b.select(o_here, coefficient_here, minus_cold),
                        b.select(o_before, coefficient_before, minus_cold),
                    )
                    row_sums = b.gep(sums, [b.mul(b.mul(b.add(first, r), features), width)])
                    target = b.bitcast(b.gep(row_sums, [column]), vec.as_pointer())
                    update = b.fadd(b.load(target, align=8), b.fmul(total, coefficient))
                    b.store(update, target, align=8)

                counted(zero64, members, row)

            counted(zero64, b.sub(count, one64), up_pass)

        counted(zero64, groups, group_body)

    counted(zero64, trees, tree_body)
    b.ret_void()
    return str(module)
