import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 7 · Tracing and debugging")

with app.setup:
    import importlib.util

    import labkit
    import marimo as mo


@app.cell
def _():
    mo.md(r"""
    # Lab 7 · Tracing and debugging

    **Learning goals**

    - Trace the RAG pipeline end to end.
    - Find the slow span and the bad retrieval in a trace.
    - Export traces over OTLP to a collector.
    """)
    return


@app.cell
def _():
    _ready = importlib.util.find_spec("workbench.observability") is not None
    labkit.callout(
        "This lab is coming with the observability capability (workbench.observability, issue 4). "
        + ("The library part is arriving: the guided lab follows in the next update."
           if _ready else "It is not in this version of the library yet.")
        + " Meanwhile, read the route-to-live playbook (docs/playbooks/route-to-live.md).",
        "warn")
    return


if __name__ == "__main__":
    app.run()
