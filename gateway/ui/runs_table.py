"""The runs table shared by an experiment's page, the cross-experiment page and the CSV export: what
its URL asks for (experiments, filter, order, columns, nesting, page) and the rows it shows.

Nested runs (autolog's grid-search children carry the tag `mlflow.parentRunId`) are a tree by
default: the table pages over top-level runs, each parent shows how many children it has, and an
expanded parent (`expand=<run id>`, or `expand=all` for the page) lists its children under it.
`nesting=flat` lists every matching run, a child linking to its parent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yarl import URL

from gateway.http.errors import ApiError
from gateway.http.request_values import whole_number
from gateway.store.errors import InvalidValue
from gateway.tracking.search_filter import InvalidFilter, parse_filter
from gateway.tracking.store import TrackingStore

RUNS_PER_PAGE = 100
MAX_RUNS_PER_PAGE = 1000
MAX_PAGE = 1_000_000
MAX_CHILDREN_SHOWN = 100
"""An expanded parent lists its newest children, this many; the rest are a link to the flat view filtered by it."""
DEFAULT_COLUMNS_PER_KIND = 6
DEFAULT_ORDER = "attributes.`start_time` DESC"  # as order_clause writes it, so its header link toggles
VIEWS = {"active": "ACTIVE_ONLY", "deleted": "DELETED_ONLY", "all": "ALL"}
NESTINGS = ("tree", "flat")
COLUMN_KINDS = ("metrics", "params", "tags")
PARENT_TAG = "mlflow.parentRunId"
TOP_LEVEL = f"tags.`{PARENT_TAG}` IS NULL"


def one_of(query: dict[str, str], name: str, allowed: tuple[str, ...] | list[str]) -> str:
    """The single-valued parameter `name`, one of `allowed` (the first is the default)."""
    value = query.get(name) or allowed[0]
    if value not in allowed:
        raise ApiError.invalid(f"'{name}' must be one of {', '.join(allowed)}, got '{value[:40]}'")
    return value


def parse_columns(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The columns the URL names, as (kind, key); none means the defaults."""
    columns = []
    for name, value in pairs:
        if name != "columns" or not value:
            continue
        kind, _, key = value.partition(".")
        if kind not in COLUMN_KINDS or not key:
            raise ApiError.invalid(f"Invalid column '{value[:80]}': use metrics.<key>, params.<key> or tags.<key>")
        columns.append((kind, key))
    return list(dict.fromkeys(columns))


def default_columns(keys: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The first few metric and param keys of `keys` (those of the runs shown, when there are some)."""
    return [(kind, key) for kind in ("metrics", "params") for key in keys[kind][:DEFAULT_COLUMNS_PER_KIND]]


def order_clause(kind: str, key: str, descending: bool) -> str:
    """An MLflow order_by clause for a column, the key quoted so any key works."""
    return f"{kind}.`{key}` {'DESC' if descending else 'ASC'}"


@dataclass(frozen=True)
class RunsQuery:
    """One view of the runs table, as its URL holds it."""

    experiment_ids: list[object]  # as the store's searches take them
    filter: str
    order: str
    view: str
    nesting: str
    columns: list[tuple[str, str]]  # as the URL names them; empty: the defaults
    size: int
    page: int
    expand: frozenset[str]  # parents whose children are listed; "all": every parent on the page

    @classmethod
    def parse(cls, pairs: list[tuple[str, str]], experiment_ids: list[object]) -> RunsQuery:
        query = dict(pairs)  # single-valued parameters: the last one wins, as in query_params
        return cls(
            experiment_ids=experiment_ids,
            filter=query.get("filter", "").strip(),
            order=query.get("order_by", "").strip() or DEFAULT_ORDER,
            view=one_of(query, "view", list(VIEWS)),
            nesting=one_of(query, "nesting", NESTINGS),
            columns=parse_columns(pairs),
            size=whole_number(query.get("max_results") or str(RUNS_PER_PAGE), "max_results", MAX_RUNS_PER_PAGE),
            page=whole_number(query.get("page") or "1", "page", MAX_PAGE),
            expand=frozenset(value for name, value in pairs if name == "expand" and value),
        )

    @property
    def store_filter(self) -> str | None:
        """The filter the store runs: the user's, and in a tree only the top-level runs. The user's is
        checked on its own first, so its errors name only what the user wrote and nothing appended
        can change its meaning."""
        try:
            parse_filter(self.filter)
        except InvalidFilter as exc:
            raise InvalidValue(str(exc)) from None
        parts = [self.filter] if self.filter else []
        if self.nesting == "tree":
            parts.append(TOP_LEVEL)
        return " and ".join(parts) or None

    @property
    def view_type(self) -> str:
        return VIEWS[self.view]

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def pairs(self, columns: list[tuple[str, str]], *, experiments: bool) -> list[tuple[str, str]]:
        """The URL parameters of this view showing `columns` (not the page nor the expanded parents); with
        `experiments`, the experiments' ids too (an experiment's own page has its id in the path)."""
        return [
            *(("experiments", str(experiment_id)) for experiment_id in self.experiment_ids if experiments),
            ("filter", self.filter),
            ("order_by", self.order),
            ("view", self.view),
            ("nesting", self.nesting),
            *(("columns", f"{kind}.{key}") for kind, key in columns),
            *([("max_results", str(self.size))] if self.size != RUNS_PER_PAGE else []),
        ]

    def is_expanded(self, run_id: str) -> bool:
        return "all" in self.expand or run_id in self.expand


def flat_row(run: dict[str, Any]) -> dict[str, Any]:
    """A run flattened for templates and CSV: info fields plus params, latest metrics and tags by key."""
    info, data = run["info"], run.get("data", {})
    row = {
        **info,
        "params": {item["key"]: item["value"] for item in data.get("params", [])},
        "metrics": {item["key"]: item["value"] for item in data.get("metrics", [])},
        "tags": {item["key"]: item["value"] for item in data.get("tags", [])},
    }
    row["parent_run_id"] = row["tags"].get(PARENT_TAG)
    return row


@dataclass
class TableRow:
    """A row of the runs table: a run, how deep in the tree, and its children when it is a parent."""

    run: dict[str, Any]
    depth: int = 0
    children: int = 0
    expanded: bool = False
    toggle_url: str = ""
    more_children_url: str = ""


async def tree_rows(store: TrackingStore, query: RunsQuery, runs: list[dict[str, Any]], here: URL) -> list[TableRow]:
    """The page's runs as table rows; in a tree, each parent's child count and an expanded parent's children."""
    if query.nesting == "flat":
        return [TableRow(run) for run in runs]
    counts = await store.child_run_counts([run["run_id"] for run in runs], query.view_type)
    rows = []
    for run in runs:
        run_id = run["run_id"]
        children = counts.get(run_id, 0)
        expanded = bool(children) and query.is_expanded(run_id)
        others = [value for value in query.expand if value != run_id]
        toggled = others if expanded else [*others, run_id]
        toggle = here.with_query([*here.query.items(), *(("expand", value) for value in sorted(toggled))])
        row = TableRow(run, children=children, expanded=expanded, toggle_url=f"{toggle}#run-{run_id}")
        rows.append(row)
        if not expanded:
            continue
        found, more = await store.child_runs(query.experiment_ids, run_id, query.view_type, MAX_CHILDREN_SHOWN)
        rows.extend(TableRow(flat_row(child), depth=1) for child in found)
        if more:
            flat = [(name, value) for name, value in here.query.items() if name not in ("nesting", "filter", "page")]
            everyone = here.with_query([*flat, ("nesting", "flat"), ("filter", f"tags.`{PARENT_TAG}` = '{run_id}'")])
            row.more_children_url = str(everyone)
    return rows


MAX_EXPERIMENTS = 20
"""The most experiments one cross-experiment table (or CSV export) reads together."""


async def chosen_experiments(store: TrackingStore, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The experiments the URL names (`experiments=<id>`, repeated), each found (or a 404 naming it)."""
    ids = list(dict.fromkeys(value for name, value in pairs if name == "experiments" and value))
    if len(ids) > MAX_EXPERIMENTS:
        raise ApiError.invalid(f"Choose at most {MAX_EXPERIMENTS} experiments (got {len(ids)})")
    return [await store.get_experiment(experiment_id) for experiment_id in ids]


async def merged_keys(
    store: TrackingStore, experiments: list[dict[str, Any]], newest_runs: int
) -> dict[str, list[str]]:
    """The metric, param and tag keys of each experiment's newest runs, together."""
    keys: dict[str, set[str]] = {kind: set() for kind in COLUMN_KINDS}
    for experiment in experiments:
        found = await store.experiment_keys(int(experiment["experiment_id"]), newest_runs)
        for kind in COLUMN_KINDS:
            keys[kind].update(found[kind])
    return {kind: sorted(values) for kind, values in keys.items()}
