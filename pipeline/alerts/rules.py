"""Alert rules: the `alerts:` section of one metric file (`metrics/_alerts.yml` in the demo).

Its structure is checked with the metric files (`pipeline/spec/schema.json`); here its
meaning is checked against the KPIs: names (with did-you-mean), grains and dimensions
(`kpi validate` and `kpi compile` report both).
Without an `alerts:` section, `DEFAULT_RULES` apply: the strategic KPIs by month.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import Issue, Location, did_you_mean, error
from pipeline.spec import located_yaml
from pipeline.spec.load import conforms
from pipeline.spec.model import Kpi, Spec

EVENT_KINDS = ("status_changed", "new_deviation", "closed_below_target", "projected_miss")
DEFAULT_URL_ENV = "KPI_ALERT_WEBHOOK_URL"
OWNER = "owner"  # in `notify`: the KPI's owner


@dataclass(frozen=True)
class Webhook:
    url_env: str = DEFAULT_URL_ENV
    timeout_seconds: float = 10.0
    retries: int = 3
    backoff_seconds: float = 1.0


@dataclass(frozen=True)
class Rule:
    name: str
    kpis: frozenset[str]
    grains: frozenset[str]
    slices: frozenset[str] | None  # dimension names ('total' for unsliced); None: every slice
    events: frozenset[str]
    notify: tuple[str, ...]
    location: Location

    def wants(self, kind: str, kpi: str, grain: str, dimension: str) -> bool:
        return (
            kind in self.events and kpi in self.kpis and grain in self.grains
            and (self.slices is None or dimension in self.slices)
        )


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...]
    webhook: Webhook = field(default_factory=Webhook)
    owners: Mapping[str, str] = field(default_factory=dict)  # KPI → owner, for `notify: [owner]`
    file: str | None = None  # None: the default rules

    def recipients(self, kind: str, kpi: str, grain: str, dimension: str) -> tuple[str, ...] | None:
        """Who is told of an event (None: no rule wants it)."""
        matched = [r for r in self.rules if r.wants(kind, kpi, grain, dimension)]
        if not matched:
            return None
        told = [self.owners.get(kpi, "") if n == OWNER else n for r in matched for n in r.notify]
        return tuple(dict.fromkeys(t for t in told if t))

    @property
    def kpis(self) -> frozenset[str]:
        return frozenset().union(*(r.kpis for r in self.rules))

    @property
    def grains(self) -> frozenset[str]:
        return frozenset().union(*(r.grains for r in self.rules))


DEFAULT_RULE = {"name": "strategic KPIs", "kpis": "strategic", "grains": ["month"],
                "slices": "total", "notify": [OWNER]}


def load_rules(files: Mapping[str, str | bytes], spec: Spec) -> tuple[Rules, list[Issue]]:
    """The rules of the metric files ({path: text or bytes}) and every problem in them."""
    issues: list[Issue] = []
    found: list[tuple[located_yaml.LocatedDocument, Location]] = []
    for path in sorted(files):
        source = files[path]
        text = source if isinstance(source, str) else source.decode("utf-8", "replace")
        if "alerts" not in text:
            continue  # cheap: most metric files have no alerts
        doc, _ = located_yaml.load(text, path)  # YAML errors are the metric loader's
        if doc is not None and isinstance(doc.value, dict) and "alerts" in doc.value:
            found.append((doc, doc.key_at(("alerts",))))
    for _, where in found[1:]:
        issues.append(error(f"'alerts' is already set in {found[0][1]}; set it in one file", where))
    kpis = {k.name: k for k in spec.kpis}
    owners = {k.name: k.owner for k in spec.kpis if k.owner}
    if not found:
        default = _rule(DEFAULT_RULE, (), None, kpis, [])  # nothing of the user's to blame
        return Rules((default,), owners=owners), issues
    doc = found[0][0]
    section = doc.value["alerts"] or {}
    if not conforms({"alerts": section}):  # the metric loader reports where
        return Rules((), owners=owners, file=doc.file), issues
    hook = section.get("webhook") or {}
    webhook = Webhook(
        url_env=hook.get("url_env", DEFAULT_URL_ENV),
        timeout_seconds=float(hook.get("timeout_seconds", Webhook.timeout_seconds)),
        retries=int(hook.get("retries", Webhook.retries)),
        backoff_seconds=float(hook.get("backoff_seconds", Webhook.backoff_seconds)),
    )
    rules = tuple(
        _rule(raw, ("alerts", "rules", i), doc, kpis, issues)
        for i, raw in enumerate(section.get("rules") or [])
    )
    return Rules(rules, webhook, owners, doc.file), issues


def _rule(
    raw: Mapping[str, Any],
    path: tuple[str | int, ...],
    doc: located_yaml.LocatedDocument | None,
    kpis: Mapping[str, Kpi],
    issues: list[Issue],
) -> Rule:
    def at(*sub: str | int) -> Location:
        return doc.at((*path, *sub)) if doc else Location("(default alert rules)")

    name = str(raw.get("name") or f"rule {int(path[-1]) + 1}")
    chosen = raw.get("kpis", "strategic")
    if chosen == "strategic":
        names = [k for k, v in kpis.items() if v.strategic]
    elif chosen == "all":
        names = list(kpis)
    else:
        assert isinstance(chosen, list)
        names = []
        for i, kpi in enumerate(chosen):
            if kpi in kpis:
                names.append(kpi)
            else:
                issues.append(error(
                    f"alert rule '{name}': unknown KPI '{kpi}'{did_you_mean(kpi, kpis)}",
                    at("kpis", i),
                ))
    grains = frozenset(raw.get("grains") or ("month",))
    slices_raw = raw.get("slices", "total")
    slices = None if slices_raw == "all" else frozenset(
        ("total",) if slices_raw == "total" else slices_raw
    )
    known = {"total"} | {d.name for n in names or kpis for d in kpis[n].dimensions}
    for i, dim in enumerate(slices_raw if isinstance(slices_raw, list) else []):
        if dim not in known:
            issues.append(error(
                f"alert rule '{name}': no KPI of the rule has dimension '{dim}'"
                f"{did_you_mean(dim, known)}",
                at("slices", i),
            ))
    for grain in sorted(grains):
        if names and not any(grain in kpis[n].grains for n in names):
            issues.append(error(
                f"alert rule '{name}': no KPI of the rule is tracked by {grain}", at("grains"),
            ))
    events = frozenset(raw.get("events") or EVENT_KINDS)
    notify = tuple(raw.get("notify") or ())
    return Rule(name, frozenset(names), grains, slices, events, notify, at())
