import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 4 · RAG on LanceDB")

with app.setup:
    import importlib.util

    import labkit
    import marimo as mo


@app.cell
def _():
    mo.md(r"""
    # Lab 4 · RAG on LanceDB

    **Learning goals**

    - Ingest a folder of documents into a LanceDB collection, incrementally.
    - Compare chunking strategies side by side.
    - Compare vector, full-text and hybrid search, and add reranking.
    - Answer with numbered citations, and inspect the table behind it.
    """)
    return


@app.cell
def _():
    _ready = importlib.util.find_spec("workbench.retrieval") is not None
    labkit.callout(
        "This lab is coming with the retrieval capability (workbench.retrieval, issue 3). "
        + ("The library part is arriving: the guided lab follows in the next update."
           if _ready else "It is not in this version of the library yet.")
        + " Meanwhile, read the route-to-live playbook (docs/playbooks/route-to-live.md).",
        "warn")
    return


if __name__ == "__main__":
    app.run()
