"""Exactness of the trust graph's bounded-depth best-path search (seed 003, factor T)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truescore.trust.graph import DomainGraph, NodeIndex, TrustGraph, best_paths
from truescore.trust.reference import quidnug_trust
from truescore.trust.topics import is_within, topic_chain

DOMAIN = "reviews.public.technology"


def brute_force(edges: dict[tuple[int, int], float], source: int, n: int, depth: int) -> np.ndarray:
    """Max over all simple paths of <= depth edges of the product of levels (exhaustive DFS)."""
    out = np.zeros(n)
    out[source] = 1.0
    adj: dict[int, list[tuple[int, float]]] = {}
    for (u, v), lv in edges.items():
        adj.setdefault(u, []).append((v, lv))

    def walk(node: int, value: float, seen: set[int], hops: int) -> None:
        if hops == depth:
            return
        for nxt, lv in adj.get(node, []):
            if nxt in seen:
                continue
            val = value * lv
            out[nxt] = max(out[nxt], val)
            seen.add(nxt)
            walk(nxt, val, seen, hops + 1)
            seen.discard(nxt)

    walk(source, 1.0, {source}, 0)
    return out


def graph_of(edges: dict[tuple[int, int], float], n: int) -> DomainGraph:
    pairs = sorted(edges)
    return DomainGraph.from_edges(n, [p[0] for p in pairs], [p[1] for p in pairs], [edges[p] for p in pairs])


def path_product(edges: dict[tuple[int, int], float], path: list[int]) -> float:
    return math.prod(edges[(a, b)] for a, b in itertools.pairwise(path))


edge_sets = st.integers(min_value=2, max_value=9).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.dictionaries(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] != p[1]),
            st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.6, 0.72, 0.8, 0.9, 0.95, 1.0]),
            max_size=30,
        ),
    )
)


@settings(max_examples=200, deadline=None)
@given(edge_sets, st.integers(0, 5))
def test_search_equals_exhaustive_enumeration(case, depth):
    n, edges = case
    result = best_paths(graph_of(edges, n), 0, depth)
    expected = brute_force(edges, 0, n, depth)
    np.testing.assert_allclose(result.values(np.arange(n)), expected, rtol=0, atol=1e-12)
    # every returned path realises its value and respects the depth bound
    for t in range(1, n):
        path = result.path(t)
        if expected[t] == 0:
            assert path is None
        else:
            assert path is not None and path[0] == 0 and path[-1] == t
            assert len(path) - 1 <= depth
            assert path_product(edges, path) == pytest.approx(expected[t], abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(edge_sets)
def test_one_search_answers_every_smaller_depth(case):
    n, edges = case
    result = best_paths(graph_of(edges, n), 0, 5)
    for d in range(6):
        np.testing.assert_allclose(result.values(np.arange(n), d), brute_force(edges, 0, n, d), atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(edge_sets, st.integers(0, 8), st.integers(0, 8), st.sampled_from([0.3, 0.7, 1.0]))
def test_adding_an_edge_never_lowers_trust(case, u, v, level):
    n, edges = case
    u, v = u % n, v % n
    if u == v or (u, v) in edges:
        return
    before = best_paths(graph_of(edges, n), 0, 5).values(np.arange(n))
    g = graph_of(edges, n)
    g.set_edge(u, v, level)
    after = best_paths(g, 0, 5).values(np.arange(n))
    assert (after >= before - 1e-15).all()
    assert ((after >= 0) & (after <= 1)).all()


def test_first_path_found_is_not_the_best_one():
    # A->B is weak, A->C->D strong; BFS queues D via B first and never takes the better path to D,
    # so the reference underrates E (reached through D).
    nodes = NodeIndex(["A", "B", "C", "D", "E"])
    g = TrustGraph.from_arrays(
        ["A", "A", "B", "C", "D"], ["B", "C", "D", "D", "E"], DOMAIN, [0.5, 0.9, 1.0, 0.9, 1.0], nodes=nodes
    )
    a, e = nodes.get("A"), nodes.get("E")
    ref = quidnug_trust(g.union(), a, e)
    exact = g.search(a, DOMAIN, 5)
    assert ref.level == pytest.approx(0.5)
    assert exact.values([e])[0] == pytest.approx(0.81)
    assert nodes.ids_of(exact.path(e)) == ["A", "C", "D", "E"]
    assert nodes.ids_of(ref.path) == ["A", "B", "D", "E"]


def test_depth_limit_is_exact_and_a_longer_better_path_is_not_taken_past_it():
    # direct A->T at 0.2, and a 5-edge chain of 0.99s: the chain wins at depth 5, not at depth 4.
    chain = ["A", "c1", "c2", "c3", "c4", "T"]
    tr = [*chain[:-1], "A"]
    te = [*chain[1:], "T"]
    lv = [0.99] * 5 + [0.2]
    g = TrustGraph.from_arrays(tr, te, DOMAIN, lv)
    a, t = g.nodes.get("A"), g.nodes.get("T")
    res = g.search(a, DOMAIN, 5)
    assert res.values([t], 5)[0] == pytest.approx(0.99**5)
    assert res.values([t], 4)[0] == pytest.approx(0.2)
    assert len(res.path(t, 5)) == 6
    assert res.path(t, 4) == [a, t]
    beyond = g.search(a, DOMAIN, 5).values([g.nodes.get("c4")], 3)[0]
    assert beyond == 0.0  # c4 is 4 hops away


def test_depth_bound_uses_the_best_path_within_the_bound_not_the_overall_best():
    # best path to X is 3 edges (0.9^3); within 2 edges only the 0.5 one exists; Y hangs off X.
    g = TrustGraph.from_arrays(
        ["A", "p", "q", "A", "m", "X"], ["p", "q", "X", "m", "X", "Y"], DOMAIN, [0.9, 0.9, 0.9, 0.5, 1.0, 1.0]
    )
    idx = g.nodes.get
    res = g.search(idx("A"), DOMAIN, 3)
    assert res.values([idx("X")], 3)[0] == pytest.approx(0.729)
    # Y within 3 edges must go through the 2-edge route to X (0.5), not the 3-edge one.
    assert res.values([idx("Y")], 3)[0] == pytest.approx(0.5)
    assert g.nodes.ids_of(res.path(idx("Y"), 3)) == ["A", "m", "X", "Y"]


def test_cycles_do_not_inflate_or_loop():
    g = TrustGraph.from_arrays(["A", "B", "C", "B"], ["B", "C", "A", "A"], DOMAIN, [0.9, 0.9, 1.0, 1.0])
    res = g.search(g.nodes.get("A"), DOMAIN, 10)
    np.testing.assert_allclose(res.values(g.nodes.lookup_many(["A", "B", "C"])), [1.0, 0.9, 0.81])
    assert len(res.rounds) <= 4  # the search stops once nothing improves


def test_topic_scoping_keeps_domains_apart_and_chain_stops_at_two_segments():
    g = TrustGraph.from_arrays(["A"], ["B"], "reviews.public.food", [1.0])
    a, b = g.nodes.get("A"), g.nodes.get("B")
    for dom, _ in topic_chain("reviews.public.technology.laptops"):
        assert g.search(a, dom, 5).values([b])[0] == 0.0
    assert g.search(a, "reviews.public.food", 5).values([b])[0] == 1.0
    assert topic_chain("reviews.public.technology.laptops") == [
        ("reviews.public.technology.laptops", 0),
        ("reviews.public.technology", 1),
        ("reviews.public", 2),
    ]
    assert is_within("reviews.public.food.pizza", "reviews.public.food")
    assert not is_within("reviews.public.foodie", "reviews.public.food")


def test_latest_statement_wins_and_zero_retracts():
    g = TrustGraph.from_arrays(["A", "A", "A"], ["B", "B", "C"], DOMAIN, [0.9, 0.2, 0.7], created_at=[10.0, 20.0, 5.0])
    a = g.nodes.get("A")
    b, c = g.nodes.get("B"), g.nodes.get("C")
    assert g.search(a, DOMAIN, 5).values([b])[0] == pytest.approx(0.2)
    assert not g.add_edge("A", "B", DOMAIN, 1.0, created_at=15.0)  # older than the standing one
    assert g.add_edge("A", "C", DOMAIN, 0.0, created_at=6.0)  # retraction
    assert g.search(a, DOMAIN, 5).values([b, c]).tolist() == [pytest.approx(0.2), 0.0]


def test_expired_edges_count_zero_and_the_result_knows_when_it_expires():
    g = TrustGraph.from_arrays(["A", "B"], ["B", "C"], DOMAIN, [1.0, 0.5], valid_until=[100.0, np.inf])
    a, c = g.nodes.get("A"), g.nodes.get("C")
    live = g.search(a, DOMAIN, 5, at=50.0)
    assert live.values([c])[0] == 0.5 and live.expires_at == 100.0
    assert g.search(a, DOMAIN, 5, at=100.0).values([c])[0] == 0.0
    with pytest.raises(ValueError, match="at"):
        g.search(a, DOMAIN, 5)


def test_edge_decay_halves_a_level_per_half_life():
    day = 86400.0
    g = TrustGraph.from_arrays(["A"], ["B"], DOMAIN, [0.8], created_at=[0.0])
    res = g.search(g.nodes.get("A"), DOMAIN, 5, at=365 * day, edge_half_life_days=365)
    assert res.values([g.nodes.get("B")])[0] == pytest.approx(0.4)


def test_incremental_edges_match_a_rebuild_including_overlay_and_compaction():
    rng = np.random.default_rng(3)
    n, m = 400, 3000
    src, dst = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = src != dst
    src, dst, lv = src[keep], dst[keep], rng.choice([0.3, 0.6, 0.9, 1.0], keep.sum())
    half = len(src) // 2
    inc = DomainGraph.from_edges(n, src[:half], dst[:half], lv[:half])
    for u, v, level in zip(src[half:], dst[half:], lv[half:], strict=True):
        inc.set_edge(int(u), int(v), float(level))
    full = DomainGraph.from_edges(n, src, dst, lv)
    for source in (0, 7, 99):
        np.testing.assert_array_equal(
            best_paths(inc, source, 5).values(np.arange(n)), best_paths(full, source, 5).values(np.arange(n))
        )
    inc.compact()
    assert inc.nnz == full.nnz
    np.testing.assert_array_equal(
        best_paths(inc, 0, 5).values(np.arange(n)), best_paths(full, 0, 5).values(np.arange(n))
    )


def test_touches_reports_exactly_the_expanded_nodes():
    g = TrustGraph.from_arrays(["A", "B", "X"], ["B", "C", "Y"], DOMAIN, [1.0, 1.0, 1.0])
    res = g.search(g.nodes.get("A"), DOMAIN, 5)
    assert res.touches(g.nodes.lookup_many(["C"]))  # C was reached: an edge out of C matters
    assert not res.touches(g.nodes.lookup_many(["X", "Y"]))  # unreachable from A


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match="level"):
        TrustGraph.from_arrays(["A"], ["B"], DOMAIN, [1.5])
    with pytest.raises(ValueError, match="domain"):
        TrustGraph.from_arrays(["A"], ["B"], "reviews..x", [0.5])
    with pytest.raises(ValueError, match="trustee"):
        TrustGraph.from_arrays(["A", "B"], ["B"], DOMAIN, [0.5, 0.5])
    with pytest.raises(ValueError, match="max_depth"):
        best_paths(DomainGraph.empty(), 0, -1)


def test_implicit_node_index_round_trips():
    idx = NodeIndex.implicit(10)
    assert idx.get("7") == 7 and idx.get("07") == -1 and idx.get("10") == -1
    assert idx.add("alice") == 10 and idx.id_of(10) == "alice" and idx.id_of(3) == "3"
    np.testing.assert_array_equal(idx.add_many(["3", "alice", "bob"]), [3, 10, 11])


def test_edges_from_nodes_created_after_the_csr_was_built_are_searched():
    g = TrustGraph.from_arrays(["A", "B"], ["B", "T"], DOMAIN, [0.5, 0.5])
    # "N1", "N2" are new nodes (beyond the CSR rows): A -> N1 -> N2 -> T is better than A -> B -> T
    g.add_edge("A", "N1", DOMAIN, 1.0)
    g.add_edge("N1", "N2", DOMAIN, 0.9)
    g.add_edge("N2", "T", DOMAIN, 0.9)
    res = g.search(g.nodes.get("A"), DOMAIN, 5)
    assert res.values([g.nodes.get("T")])[0] == pytest.approx(0.81)
    assert g.nodes.ids_of(res.path(g.nodes.get("T"))) == ["A", "N1", "N2", "T"]
    assert res.values([g.nodes.get("B")])[0] == pytest.approx(0.5)
