"""``distill registry ...``: inspect model versions and move aliases from the command line.

    distill registry list
    distill registry show v3 --json
    distill registry promote v3 --to production --reason "canary healthy for 24 h"
    distill registry rollback production --reason "error rate up"
    distill registry history --alias production

The registry URL comes from ``--url``, else ``$DISTILL_REGISTRY_URL``, else ``registry.url`` in
params.yaml. SQLAlchemy and rich are imported by the commands, not at start-up.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from pipeline import outputs
from pipeline.errors import DistillError

if TYPE_CHECKING:
    from pipeline.registry.store import Registry

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="Model registry: versions, aliases (candidate, canary, production) and their history.")

JSON_OPT = typer.Option(False, "--json", help="print JSON instead of a table")


@app.callback()
def _options(ctx: typer.Context,
             params: str = typer.Option("params.yaml", help="params file holding the registry section"),
             url: Optional[str] = typer.Option(None, help="registry database URL (overrides params and env)")) -> None:
    ctx.obj = {"params": params, "url": url}


def _open(ctx: typer.Context) -> Registry:
    from pipeline.config import load_params
    from pipeline.config.registry import RegistryConfig
    from pipeline.registry.store import Registry, resolve_url

    path = Path(ctx.obj["params"])
    config = load_params(path).registry if path.exists() else RegistryConfig()
    return Registry(ctx.obj["url"] or resolve_url(config), config.artifacts_dir)


def _actor(command: str) -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:registry {command} ({user})"


def _run(ctx: typer.Context, body: Any) -> None:
    """Run ``body(registry)`` turning user errors into a message and exit code 1."""
    from pipeline.config import ConfigError

    try:
        with _open(ctx) as reg:
            body(reg)
    except (DistillError, ConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2))


def _table(title: str, columns: list[str], rows: list[list[Any]], wide: set[str] = frozenset()) -> None:
    """A table that fits the terminal: short columns are never cut or wrapped; only ``wide`` ones wrap."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for col in columns:
        table.add_column(col, no_wrap=col not in wide, overflow="fold" if col in wide else "ellipsis",
                         ratio=1 if col in wide else None)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console().print(table)


def _change(e) -> str:
    """One history entry's change in a few characters: ``register v3``, ``production v2 -> v3``,
    ``canary v4 at 25%``, ``candidate v3 -> none``."""
    if e.alias is None:
        return f"{e.action} {e.version or ''}".strip()
    new = e.version or "none"
    change = f"{e.alias} {e.previous} -> {new}" if e.previous and e.previous != e.version else f"{e.alias} {new}"
    if e.weight is not None and e.alias == "canary" and e.version:
        change += f" at {e.weight:.0%}"
    return change


def _numbers(numbers: dict[str, Any] | None) -> str:
    from pipeline.numbers import fmt

    return ", ".join(f"{k}={fmt(v)}" for k, v in (numbers or {}).items() if not isinstance(v, (dict, list)))


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


@app.command("list")
def list_versions(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """List every version with its status, aliases and gate verdict."""

    def body(reg: Registry) -> None:
        versions = reg.list_versions()
        aliases = reg.aliases()
        held: dict[str, list[str]] = {}
        for name, state in aliases.items():
            if state.version is not None:
                label = f"{name} ({state.weight:.0%})" if state.weight is not None else name
                held.setdefault(state.version.id, []).append(label)
        if as_json:
            _print_json({"versions": [dict(v.to_dict(), aliases=held.get(v.id, [])) for v in versions],
                         "aliases": {n: s.to_dict() for n, s in aliases.items()}})
            return
        _table("model versions", ["version", "created", "status", "aliases", "commit", "bundle", "reason"],
               [[v.id, _when(v.created_at), v.status, ", ".join(held.get(v.id, [])),
                 (v.git_commit or "")[:8] + ("+dirty" if v.git_dirty else ""), v.bundle_digest[:12],
                 v.reason if not v.rejected else "; ".join(v.reasons)] for v in versions], wide={"reason"})

    _run(ctx, body)


@app.command("show")
def show(ctx: typer.Context, version: str = typer.Argument(..., help="version id, e.g. v3"),
         as_json: bool = JSON_OPT) -> None:
    """Show one version: lineage, metrics, gate checks and where its bundle is."""

    def body(reg: Registry) -> None:
        v = reg.get_version(version)
        if as_json:
            _print_json(v.to_dict())
            return
        rows = [["status", v.status], ["created", _when(v.created_at)], ["actor", v.actor], ["reason", v.reason],
                ["git commit", f"{v.git_commit or 'unknown'}{' (dirty)' if v.git_dirty else ''}"],
                ["dvc.lock md5", v.dvc_lock_md5], ["bundle digest", v.bundle_digest],
                ["artifact", str(reg.artifacts_dir / v.artifact_location)]]
        rows += [["rejected because", r] for r in v.reasons]
        rows += [[f"metric {k}", json.dumps(val)] for k, val in v.metrics.items()]
        for check in v.gate.get("checks") or []:
            if isinstance(check, dict):
                name = "/".join(str(check[k]) for k in ("suite", "metric") if check.get(k) is not None)
                mark = "pass" if check.get("passed") else "FAIL"
                rows.append([f"gate {name}", f"{mark}: {check.get('value')} (threshold {check.get('threshold')})"])
        _table(f"version {v.id}", ["field", "value"], rows)

    _run(ctx, body)


@app.command("promote")
def promote(ctx: typer.Context, version: str = typer.Argument(..., help="version id, e.g. v3"),
            to: str = typer.Option(..., "--to", help="alias: candidate, canary or production"),
            reason: str = typer.Option(..., help="why (kept in the history)"),
            weight: Optional[float] = typer.Option(None, help="canary traffic share 0..1"),
            as_json: bool = JSON_OPT) -> None:
    """Point an alias at a version (a rejected version is refused)."""

    def body(reg: Registry) -> None:
        state = reg.promote(version, to, actor=_actor("promote"), reason=reason, weight=weight)
        if as_json:
            _print_json(state.to_dict())
        else:
            typer.echo(f"{to} -> {state.version.id if state.version else None}"
                       + (f" (weight {state.weight})" if state.weight is not None else ""))

    _run(ctx, body)


@app.command("rollback")
def rollback(ctx: typer.Context, alias: str = typer.Argument(..., help="alias to roll back"),
             reason: str = typer.Option(..., help="why (kept in the history)"), as_json: bool = JSON_OPT) -> None:
    """Put an alias back on the version it held before the current one."""

    def body(reg: Registry) -> None:
        state = reg.rollback(alias, actor=_actor("rollback"), reason=reason)
        if as_json:
            _print_json(state.to_dict())
        else:
            typer.echo(f"{alias} rolled back to {state.version.id if state.version else 'nothing'}")

    _run(ctx, body)


@app.command("history")
def history(ctx: typer.Context, alias: Optional[str] = typer.Option(None, help="only this alias's changes"),
            limit: Optional[int] = typer.Option(None, min=1, help="only the most recent N entries"),
            numbers: bool = typer.Option(False, "--numbers", help="add the numbers each change was judged on"),
            as_json: bool = JSON_OPT) -> None:
    """Every registration and alias change, oldest first: when, who, what changed and why (--numbers for
    the numbers, --json for everything)."""

    def body(reg: Registry) -> None:
        entries = reg.history(alias=alias, limit=limit)
        if as_json:
            _print_json([e.to_dict() for e in entries])
            return
        columns = ["#", "when", "actor", "change", "reason"] + (["numbers"] if numbers else [])
        _table("registry history", columns,
               [[e.id, _when(e.at), e.actor, _change(e), e.reason] + ([_numbers(e.numbers)] if numbers else [])
                for e in entries], wide={"reason", "numbers"})

    _run(ctx, body)


@app.command("register")
def register(ctx: typer.Context, bundle: str = typer.Argument(str(outputs.path("bundle")), help="bundle directory"),
             gate: str = typer.Option(str(outputs.path("gate")), help="gate report of this bundle"),
             metrics: list[str] = typer.Option([], help="metrics JSON files to record (repeatable)"),
             reason: str = typer.Option(..., help="why this version exists"),
             force_reason: str = typer.Option(None, help="make a bundle the gate once rejected a candidate "
                                              "anyway; the reason goes into the history"),
             as_json: bool = JSON_OPT) -> None:
    """Register a bundle with its gate report (which must be this bundle's); a failed gate registers it as rejected."""

    def body(reg: Registry) -> None:
        from pipeline.config import load_params
        from pipeline.io import read_json
        from pipeline.release.register import register_from_gate

        values: dict[str, Any] = {}
        for path in metrics:
            if not Path(path).is_file():
                raise DistillError(f"{path}: metrics file not found")
            values[Path(path).stem] = read_json(path)
        params_path = Path(ctx.obj["params"])
        snapshot = load_params(params_path) if params_path.exists() else None
        v = register_from_gate(snapshot, bundle, gate, None, actor=_actor("register"), reason=reason, registry=reg,
                               force_reason=force_reason, metrics=values)
        if as_json:
            _print_json(v.to_dict())
        else:
            typer.echo(f"{v.id} {v.status}" + (f": {'; '.join(v.reasons)}" if v.rejected else ""))

    _run(ctx, body)
