"""The decompositions against plain-Python oracles over hand-made rows (no warehouse)."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from fractions import Fraction
from itertools import permutations

import pytest
from sqlglot import parse_one

from pipeline.explain.decompose import (
    NotDecomposable,
    Ratio,
    additive,
    adds_up,
    evaluate,
    mix_rate,
    own_changes,
    shapley,
)


def _by_name(drivers):
    return {d.name: d for d in drivers}


# --- additive ---------------------------------------------------------------------------

ORDERS = [  # (period, channel, amount): the oracle sums rows
    ("oct", "web", 100.0), ("oct", "web", 50.0), ("oct", "app", 30.0), ("oct", None, 5.0),
    ("nov", "web", 80.0), ("nov", "app", 90.0), ("nov", "marketplace", 40.0),
]  # fmt: skip


def _sums(period):
    out = defaultdict(float)
    for p, channel, amount in ORDERS:
        if p == period:
            out["(null)" if channel is None else channel] += amount
    return dict(out)


def test_additive_contributions_are_each_slices_change_and_sum_to_the_total_change():
    now, then = _sums("nov"), _sums("oct")
    drivers = additive(now, then)
    got = _by_name(drivers)
    # by hand: web 80 - 150, app 90 - 30, marketplace new (40 - 0), the NULL slice gone (0 - 5)
    assert {k: d.contribution for k, d in got.items()} == {
        "web": -70.0, "app": 60.0, "marketplace": 40.0, "(null)": -5.0
    }
    total_change = sum(a for p, _, a in ORDERS if p == "nov") - sum(a for p, _, a in ORDERS if p == "oct")
    assert math.fsum(d.contribution for d in drivers) == pytest.approx(total_change, rel=1e-12)
    assert [d.name for d in drivers] == ["web", "app", "marketplace", "(null)"]  # largest first


def test_adds_up_tells_a_partition_from_overlapping_slices():
    assert adds_up([150.0, 30.0, 5.0], 185.0)
    assert not adds_up([150.0, 30.0], 185.0)  # the NULL slice left out
    assert not adds_up([1.0], None)


# --- ratios -----------------------------------------------------------------------------


def _ratio_oracle(rows):
    """Per slice (Σ amount, count) and the overall mean amount, from (slice, amount) rows."""
    parts = defaultdict(lambda: [0.0, 0.0])
    for name, amount in rows:
        parts[name][0] += amount
        parts[name][1] += 1
    mean = sum(a for _, a in rows) / len(rows)
    return {k: Ratio(n, d) for k, (n, d) in parts.items()}, mean


def test_mix_rate_with_equal_rates_is_pure_mix_of_zero_and_rates_moving_is_pure_rate():
    # both slices average 10 in both periods; only their weights move: the average cannot move
    then, r0 = _ratio_oracle([("a", 10.0)] * 3 + [("b", 10.0)])
    now, r1 = _ratio_oracle([("a", 10.0)] + [("b", 10.0)] * 3)
    drivers = _by_name(mix_rate(now, then))
    assert r1 - r0 == 0
    assert all(abs(d.mix) < 1e-12 and abs(d.rate) < 1e-12 for d in drivers.values())
    # same weights, slice a's average goes 10 → 14: all rate, a's share (1/2) of the +4
    then, r0 = _ratio_oracle([("a", 10.0), ("b", 20.0)])
    now, r1 = _ratio_oracle([("a", 14.0), ("b", 20.0)])
    drivers = _by_name(mix_rate(now, then))
    assert drivers["a"].rate == pytest.approx(2.0) and drivers["a"].mix == pytest.approx(0.0)
    assert drivers["b"].contribution == pytest.approx(0.0)
    assert sum(d.contribution for d in drivers.values()) == pytest.approx(r1 - r0)


def test_mix_rate_with_a_slice_appearing_and_one_disappearing_sums_exactly():
    then, r0 = _ratio_oracle([("a", 10.0), ("a", 30.0), ("gone", 50.0)])
    now, r1 = _ratio_oracle([("a", 20.0), ("new", 80.0), ("new", 60.0)])
    drivers = _by_name(mix_rate(now, then))
    assert math.fsum(d.contribution for d in drivers.values()) == pytest.approx(r1 - r0, rel=1e-12)
    r_bar = (r0 + r1) / 2
    # a slice present on one side only has no rate effect: its share moved, at its own rate
    assert drivers["new"].rate == 0 and drivers["new"].mix == pytest.approx((2 / 3) * (70 - r_bar))
    assert drivers["gone"].rate == 0 and drivers["gone"].mix == pytest.approx((0 - 1 / 3) * (50 - r_bar))
    assert drivers["new"].value == 70 and drivers["new"].base is None
    # a: share 2/3 → 1/3, rate 20 → 20
    assert drivers["a"].rate == pytest.approx(0.0)
    assert drivers["a"].mix == pytest.approx((1 / 3 - 2 / 3) * (20 - r_bar))


def test_mix_rate_sums_exactly_on_random_data_in_exact_arithmetic():
    rng = random.Random(7)
    for _ in range(50):
        slices = [f"s{i}" for i in range(rng.randint(1, 6))]
        then = {s: Ratio(rng.randint(0, 50), rng.randint(1, 20)) for s in slices if rng.random() < 0.8}
        now = {s: Ratio(rng.randint(0, 50), rng.randint(1, 20)) for s in slices if rng.random() < 0.8}
        if not then or not now:
            continue
        drivers = mix_rate(now, then)
        exact_then = Fraction(sum(int(r.numerator) for r in then.values()), sum(int(r.denominator) for r in then.values()))
        exact_now = Fraction(sum(int(r.numerator) for r in now.values()), sum(int(r.denominator) for r in now.values()))
        assert math.fsum(d.contribution for d in drivers) == pytest.approx(float(exact_now - exact_then), rel=1e-9, abs=1e-12)
        assert all(d.contribution == pytest.approx(d.mix + d.rate) for d in drivers)


def test_mix_rate_refuses_a_numerator_without_denominator_and_an_empty_period():
    with pytest.raises(NotDecomposable, match="no denominator"):
        mix_rate({"a": Ratio(5, 0), "b": Ratio(1, 1)}, {"a": Ratio(1, 1)})
    with pytest.raises(NotDecomposable, match="denominator is 0"):
        mix_rate({"a": Ratio(0, 0)}, {"a": Ratio(1, 1)})


# --- formulas ---------------------------------------------------------------------------


def _shapley_oracle(formula, now, then):
    """Shapley values by brute force: the marginal effects over every order of the inputs."""
    names = sorted(now)
    totals = dict.fromkeys(names, 0.0)
    orders = list(permutations(names))
    for order in orders:
        point = dict(then)
        for name in order:
            before = formula(point)
            point[name] = now[name]
            totals[name] += formula(point) - before
    return {k: v / len(orders) for k, v in totals.items()}


def _f(text):
    tree = parse_one(text, read="postgres")
    return lambda values: evaluate(tree, values)


@pytest.mark.parametrize(
    ("formula", "now", "then"),
    [
        ("(revenue - cogs) / revenue", {"revenue": 120.0, "cogs": 70.0}, {"revenue": 100.0, "cogs": 60.0}),
        ("100 * (promoters - detractors) / responses",
         {"promoters": 6.0, "detractors": 1.0, "responses": 8.0},
         {"promoters": 5.0, "detractors": 3.0, "responses": 16.0}),
        ("(revenue - cogs - opex - ads) / revenue",
         {"revenue": 500.0, "cogs": 200.0, "opex": 120.0, "ads": 40.0},
         {"revenue": 450.0, "cogs": 210.0, "opex": 100.0, "ads": 35.0}),
    ],
)  # fmt: skip
def test_shapley_matches_the_brute_force_oracle_and_sums_to_the_formulas_change(formula, now, then):
    f = _f(formula)
    drivers = _by_name(shapley(f, now, then))
    oracle = _shapley_oracle(f, now, then)
    assert {k: d.contribution for k, d in drivers.items()} == pytest.approx(oracle, rel=1e-12)
    assert math.fsum(d.contribution for d in drivers.values()) == pytest.approx(f(now) - f(then), rel=1e-12)


def test_shapley_of_known_closed_forms():
    # a sum: each input's own change; a product: Δa · (b + b')/2
    drivers = _by_name(shapley(_f("a + b - c"), {"a": 5.0, "b": 1.0, "c": 4.0}, {"a": 2.0, "b": 3.0, "c": 1.0}))
    assert {k: d.contribution for k, d in drivers.items()} == pytest.approx({"a": 3.0, "b": -2.0, "c": -3.0})
    drivers = _by_name(shapley(_f("a * b"), {"a": 4.0, "b": 10.0}, {"a": 2.0, "b": 6.0}))
    assert drivers["a"].contribution == pytest.approx(2.0 * (6 + 10) / 2)
    assert drivers["b"].contribution == pytest.approx(4.0 * (2 + 4) / 2)


def test_shapley_refuses_a_formula_undefined_on_the_way():
    with pytest.raises(NotDecomposable, match="division by 0"):
        shapley(_f("a / b"), {"a": 1.0, "b": 0.0}, {"a": 1.0, "b": 2.0})


def test_evaluate_follows_sql_nulls_and_division_by_zero():
    assert evaluate(parse_one("a / b"), {"a": 1.0, "b": 0.0}) is None
    assert evaluate(parse_one("a + b"), {"a": 1.0, "b": None}) is None
    assert evaluate(parse_one("coalesce(b, 2) * -a"), {"a": 3.0, "b": None}) == -6.0
    assert evaluate(parse_one("nullif(a, 3) + 1"), {"a": 3.0}) is None
    assert evaluate(parse_one("greatest(a, b, null) - least(a, b)"), {"a": 3.0, "b": 5.0}) == 2.0
    assert evaluate(parse_one("cast(a as double) / 2"), {"a": 3.0}) == 1.5
    with pytest.raises(NotDecomposable, match="cannot evaluate"):
        evaluate(parse_one("case when a > 1 then a end"), {"a": 3.0})


# --- distinct counts ----------------------------------------------------------------------

SIGHTINGS = [  # (period, customer, channel): one customer buys on two channels in nov
    ("oct", "c1", "web"), ("oct", "c2", "app"), ("oct", "c2", "app"),
    ("nov", "c1", "web"), ("nov", "c1", "app"), ("nov", "c3", "app"),
]  # fmt: skip


def _distinct(period):
    slices = defaultdict(set)
    for p, customer, channel in SIGHTINGS:
        if p == period:
            slices[channel].add(customer)
    total = {c for p, c, _ in SIGHTINGS if p == period}
    return {k: float(len(v)) for k, v in slices.items()}, float(len(total))


def test_distinct_slices_that_overlap_are_not_a_partition_and_own_changes_say_so():
    (now, now_total), (then, then_total) = _distinct("nov"), _distinct("oct")
    assert adds_up(then.values(), then_total)  # october: each customer on one channel
    assert not adds_up(now.values(), now_total)  # november: c1 on web and app counts once
    drivers = _by_name(own_changes(now, then))
    assert {k: (d.value, d.base, d.change, d.contribution) for k, d in drivers.items()} == {
        "web": (1.0, 1.0, 0.0, None), "app": (2.0, 1.0, 1.0, None)
    }
