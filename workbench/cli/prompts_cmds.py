"""CLI for the prompt registry: ``workbench prompts list|show|push|label|diff|rollback|
deployments``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.cli.common import console, gateway, print_json, table

prompts_app = typer.Typer(help="Versioned prompts: push versions, move labels (production "
                               "moves are audited deployments), diff.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Prompt name, e.g. rag.answer.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _store() -> Any:
    return gateway().store


def _actor() -> str:
    from workbench.models.audit import cli_actor

    return cli_actor()


@prompts_app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """Every prompt: versions, the production version, other labels."""
    from workbench import prompts

    rows = prompts.list_prompts(_store()).rows
    if as_json:
        print_json(rows)
        return
    console.print(table(rows, list(prompts.PromptTable.COLUMNS), title="prompts"))


@prompts_app.command("show")
def show_cmd(name: NameArg,
             which: Annotated[str | None, typer.Argument(
                 help="A label or version (default: production).")] = None,
             history: Annotated[bool, typer.Option(help="List every version.")] = False,
             as_json: JsonOpt = False) -> None:
    """A version's messages, variables and model settings (or every version)."""
    from workbench import prompts

    store = _store()
    if history:
        found = prompts.versions(store, name)
        if as_json:
            print_json([v.to_dict() for v in found])
            return
        console.print(table([{"n": v.n or "built-in", "version": v.version,
                              "labels": ", ".join(v.labels) or "-", "by": v.created_by,
                              "description": v.description[:60]} for v in found],
                            ["n", "version", "labels", "by", "description"], title=name))
        return
    v = prompts.resolve(store, f"{name}@{which}" if which else name, name)
    if as_json:
        print_json(v.to_dict())
        return
    console.print(f"{v.ref}  (v{v.n or 0}, {v.source}; labels: {', '.join(v.labels) or '-'})",
                  highlight=False, markup=False)
    console.print(f"variables: {', '.join(v.variables) or '-'}   model settings: "
                  f"{json.dumps(v.model_settings) if v.model_settings else '-'}",
                  highlight=False, markup=False)
    for m in v.messages:
        console.print(f"[bold][{m['role']}][/]", highlight=False)
        console.print(m["content"], highlight=False, markup=False)


def _messages(file: Path | None, system: str | None, user: str | None
              ) -> tuple[Any, dict[str, Any], str]:
    from workbench.errors import BadRequest

    if file is not None:
        if system or user:
            raise BadRequest("give either --file or --system/--user, not both")
        if not file.exists():
            raise BadRequest(f"no such file {file}")
        text = file.read_text(encoding="utf-8")
        if file.suffix in (".yaml", ".yml", ".json"):
            import yaml

            try:
                data = yaml.safe_load(text)  # YAML is a superset of JSON
            except yaml.YAMLError as exc:
                raise BadRequest(f"{file}: not valid YAML/JSON ({exc})") from None
            if not isinstance(data, dict) or "messages" not in data:
                raise BadRequest(f"{file}: expected messages: [{{role, content}}, ...] and "
                                 "optionally model_settings and description")
            return (data["messages"], dict(data.get("model_settings") or {}),
                    str(data.get("description") or ""))
        return text, {}, ""
    if not user:
        raise BadRequest("give the prompt: --file PATH, or --user TEXT (and --system TEXT)")
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}]
    return messages, {}, ""


def _settings(items: list[str]) -> dict[str, Any]:
    from workbench.errors import BadRequest

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise BadRequest(f"--setting expects key=value (e.g. temperature=0.2), got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


@prompts_app.command("push")
def push_cmd(
    name: NameArg,
    file: Annotated[Path | None, typer.Option(help="A .txt prompt, or .yaml/.json with "
                                              "messages, model_settings, description.")] = None,
    system: Annotated[str | None, typer.Option(help="System message text.")] = None,
    user: Annotated[str | None, typer.Option(help="User message text ({{variables}} allowed).")]
    = None,
    setting: Annotated[list[str] | None, typer.Option(
        help="A model setting the prompt expects, key=value (repeatable).")] = None,
    label: Annotated[list[str] | None, typer.Option(
        help="Point this label at the version (repeatable; not production).")] = None,
    description: Annotated[str | None, typer.Option(help="What changed and why.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Store a new version (the same content is the same version: pushing it again is a
    no-op). Label it candidate, gate it, then `prompts label NAME production VERSION`."""
    from workbench import prompts

    messages, settings, desc = _messages(file, system, user)
    settings.update(_settings(setting or []))
    v = prompts.push(_store(), name, messages, model_settings=settings,
                     description=description or desc, labels=label or [], actor=_actor())
    if as_json:
        print_json(v.to_dict())
        return
    console.print(f"pushed {v.ref} (v{v.n}); labels: {', '.join(v.labels) or '-'}; "
                  f"variables: {', '.join(v.variables) or '-'}", highlight=False, markup=False)


@prompts_app.command("label")
def label_cmd(name: NameArg,
              label: Annotated[str, typer.Argument(help="production, candidate, ...")],
              version: Annotated[str, typer.Argument(help="The version (hash or 4+ chars) "
                                                    "or another label to copy.")]) -> None:
    """Point a label at a version (audited). Moving production is a deployment: it counts
    in the route-to-live metrics (`prompts deployments`). For a move behind an eval gate,
    use `workbench.prompts.promote()` with the eval run of the candidate."""
    from workbench import prompts

    store = _store()
    target = prompts.resolve(store, f"{name}@{version}", name)
    v = prompts.set_label(store, name, label, target.version, actor=_actor())
    console.print(f"{name}: {label} -> {v.version} (v{v.n})", highlight=False, markup=False)


@prompts_app.command("rollback")
def rollback_cmd(name: NameArg) -> None:
    """Move production back to the version before the last deployment (that deployment
    then counts as a change failure)."""
    from workbench import prompts

    v = prompts.rollback(_store(), name, actor=_actor())
    console.print(f"{name}: production -> {v.version} (rolled back)", highlight=False,
                  markup=False)


@prompts_app.command("diff")
def diff_cmd(name: NameArg,
             a: Annotated[str, typer.Argument(help="Label or version (the 'before').")],
             b: Annotated[str, typer.Argument(help="Label or version (the 'after').")]) -> None:
    """A unified diff of two versions or labels (messages and model settings)."""
    from workbench import prompts

    typer.echo(prompts.diff(_store(), name, a, b))


@prompts_app.command("deployments")
def deployments_cmd(name: Annotated[str | None, typer.Argument(help="Only this prompt.")] = None,
                    as_json: JsonOpt = False) -> None:
    """Every production move, as route-to-live change records (lead time, failures)."""
    from workbench import prompts

    rows = prompts.deployments(_store(), name)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no deployments yet: `workbench prompts label NAME production VERSION`")
        return
    console.print(table(rows, ["change", "first_commit", "deployed", "gate", "failure",
                               "actor"], title="prompt deployments"))


def register(app: typer.Typer) -> None:
    app.add_typer(prompts_app, name="prompts")


__all__ = ["prompts_app", "register"]
