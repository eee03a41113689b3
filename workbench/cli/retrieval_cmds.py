"""CLI for retrieval: ingest, search, ask, collections."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from workbench.cli.common import KEY_HELP, console, err_console, gateway, print_json, table

COLLECTION_HELP = "Collection name."
collections_app = typer.Typer(help="List, inspect and drop retrieval collections.",
                              invoke_without_command=True)


def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files and folders to ingest.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help=COLLECTION_HELP)]
    = "docs",
    chunking: Annotated[str | None, typer.Option(
        help="markdown | paragraph | fixed (default: the collection's, else markdown).")]
    = None,
    chunk_tokens: Annotated[int | None, typer.Option(
        help="Chunk size in embedder tokens (default 200).")] = None,
    overlap: Annotated[int | None, typer.Option(
        help="Tokens shared by neighbouring chunks (fixed chunking; default 32).")] = None,
    embed_model: Annotated[str | None, typer.Option(
        help="Embedding model (default: the collection's, else the profile's).")] = None,
    prune: Annotated[bool, typer.Option(
        help="Remove documents whose files are gone from the given folders.")] = False,
    batch_size: Annotated[int, typer.Option(help="Texts per embedding call.")] = 32,
    commit_every: Annotated[int, typer.Option(
        help="Commit to the table after this many chunks (also every 5 s).")] = 256,
    progress: Annotated[bool | None, typer.Option(
        help="Progress bar (default: when stderr is a terminal).")] = None,
    mask_pii: Annotated[bool | None, typer.Option(
        "--mask-pii/--no-mask-pii",
        help="Mask PII/secrets before chunks are stored and embedded (default: the "
             "collection's setting; on for a new collection). Masked text is what is "
             "searched: a search for an email finds nothing.")] = None,
    root: Annotated[str | None, typer.Option(
        help="Only accept paths inside this folder (relative paths start from it; '..' "
             "that leaves it is refused).")] = None,
    follow_symlinks: Annotated[bool, typer.Option(
        help="Ingest files and folders that resolve outside the folder being ingested "
             "(symlinks); by default they are skipped.")] = False,
    key: Annotated[str | None, typer.Option(help=KEY_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Ingest Markdown, text, HTML, Python, notebooks and PDFs. Incremental: unchanged
    files are skipped, changed ones replace their chunks. PII is masked in new collections
    (--no-mask-pii to keep it); symlinks leading out of a folder are skipped. Exit 1 if a
    path is missing or nothing could be ingested."""
    from workbench.retrieval.chunking import ChunkingConfig
    from workbench.retrieval.ingest import ingest as run_ingest

    cfg = None
    if chunking or chunk_tokens or overlap is not None:
        from pydantic import ValidationError

        from workbench.errors import BadRequest

        fields = {"strategy": chunking, "max_tokens": chunk_tokens, "overlap": overlap}
        try:
            cfg = ChunkingConfig(**{k: v for k, v in fields.items() if v is not None})
        except ValidationError as exc:
            msgs = "; ".join(str(e["msg"]) for e in exc.errors())
            raise BadRequest(f"invalid chunking options: {msgs}") from None
    report = run_ingest(gateway(key), paths, collection=collection, chunking=cfg,
                        embed_model=embed_model, prune=prune, batch_size=batch_size,
                        commit_every=commit_every,
                        progress=False if as_json else progress, mask_pii=mask_pii,
                        root=root, follow_symlinks=follow_symlinks)
    if as_json:
        print_json(report.to_dict())
    else:
        for line in report.summary_lines():
            console.print(line, highlight=False, markup=False)
    if not report.ok:
        if not as_json:
            err_console.print("[red]error:[/] " + escape(
                f"not found: {', '.join(report.missing_paths)}" if report.missing_paths
                else "nothing was ingested (see the skipped files above)"), highlight=False)
        raise typer.Exit(1)


def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help=COLLECTION_HELP)]
    = "docs",
    k: Annotated[int, typer.Option("--k", "-k", help="Number of results.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid | vector | fts.")] = "hybrid",
    source: Annotated[str | None, typer.Option(help="Only chunks from this source path.")]
    = None,
    doc_type: Annotated[str | None, typer.Option(
        help="Only this file type: md, txt, html, py, ipynb, pdf.")] = None,
    where: Annotated[str | None, typer.Option(help="Raw SQL filter on metadata columns.")]
    = None,
    key: Annotated[str | None, typer.Option(help=KEY_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """Search a collection. JSON: a list of {source, text, score, ...}. PII/secrets in the
    text are masked unless the `mask_sources` setting is off."""
    from workbench.retrieval.search import search as run_search

    filters = {k_: v for k_, v in (("source", source), ("doc_type", doc_type)) if v}
    gw = gateway(key)
    hits = run_search(gw, query, collection=collection, k=k,
                      mode=mode,  # type: ignore[arg-type]  # validated by search()
                      filters=filters, where=where)
    if gw.settings.mask_sources:  # what is printed is shown to a person, or piped on
        hits = [h.masked() for h in hits]
    if as_json:
        print_json([h.to_dict() for h in hits])
        return
    if not hits:
        console.print("no results")
    for h in hits:
        sim = f" sim {h.similarity:.3f}" if h.similarity is not None else ""
        console.print(f"[bold]{h.rank}. {escape(h.source)}[/] [dim]{escape(h.heading or h.title)} · "
                      f"{h.mode} {h.score:.4f}{sim}[/]", highlight=False)
        console.print("   " + h.snippet(), highlight=False, markup=False)


def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help=COLLECTION_HELP)]
    = "docs",
    k: Annotated[int, typer.Option("--k", "-k", help="Sources put in the prompt.")] = 3,
    mode: Annotated[str, typer.Option(help="Retrieval mode: hybrid | vector | fts.")]
    = "hybrid",
    model: Annotated[str | None, typer.Option("--model", "-m", help="Chat model.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Cap on answer tokens.")] = 128,
    key: Annotated[str | None, typer.Option(help=KEY_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print answer, sources, trace_id.")]
    = False,
) -> None:
    """Answer from a collection through the governed Gateway, with numbered sources."""
    from workbench.retrieval.rag import ask as run_ask

    ans = run_ask(gateway(key), question, collection=collection, k=k,
                  mode=mode,  # type: ignore[arg-type]  # validated by search()
                  model=model, max_tokens=max_tokens)
    if as_json:
        print_json(ans.to_dict())
        return
    console.print(ans.answer, highlight=False, markup=False)
    if ans.sources:
        console.print("\n[bold]Sources[/]")
    for s in ans.sources:
        where_ = f" - {s.heading}" if s.heading else ""
        console.print(f"{'*' if s.cited else ' '}[{s.n}] {s.source}{where_}", highlight=False,
                      markup=False)
    console.print(f"[dim]trace {ans.trace_id}[/]")


@collections_app.callback()
def collections_main(ctx: typer.Context) -> None:
    """With no subcommand: list collections."""
    if ctx.invoked_subcommand is None:
        collections_list(as_json=False)


@collections_app.command("list")
def collections_list(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Collections with their chunk and document counts."""
    from workbench.retrieval.collections import Collections

    cols = Collections.for_settings(gateway().settings)
    rows = [cols.stats(n) for n in cols.names()]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(f"no collections in {cols.uri} (create one: workbench ingest PATH)")
        return
    console.print(table(rows, ["name", "documents", "chunks", "embed_model", "dim"],
                        title=f"collections in {cols.uri}"))


@collections_app.command("stats")
def collections_stats(
    name: Annotated[str, typer.Argument(help=COLLECTION_HELP)] = "docs",
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Schema (model, dimension, chunking, version), sizes and indexes of a collection."""
    from workbench.retrieval.collections import Collections

    stats = Collections.for_settings(gateway().settings).stats(name)
    if as_json:
        print_json(stats)
        return
    for k_, v in stats.items():
        console.print(f"{k_:>17}: {v}", highlight=False, markup=False)


@collections_app.command("drop")
def collections_drop(
    name: Annotated[str, typer.Argument(help=COLLECTION_HELP)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
    = False,
) -> None:
    """Delete a collection and all its chunks (the embedding cache is kept)."""
    from workbench.retrieval.collections import Collections

    cols = Collections.for_settings(gateway().settings)
    cols.open(name)  # a missing collection fails before the prompt
    if not yes:
        typer.confirm(f"drop collection {name!r}?", abort=True)
    cols.drop(name)
    console.print(f"dropped {name}")


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("search")(search)
    app.command("ask")(ask)
    app.add_typer(collections_app, name="collections")


__all__ = [
    "register",
]
