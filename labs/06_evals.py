import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 6 · Evals with ragas")

with app.setup:
    import importlib.util

    import labkit
    import marimo as mo


@app.cell
def _():
    mo.md(r"""
    # Lab 6 · Evals with ragas

    **Learning goals**

    - Build a golden dataset and run ragas metrics on it.
    - Compare a chunking change and a model swap with the same eval.
    - Read an eval report honestly, including the tiny judge's limits.
    """)
    return


@app.cell
def _():
    _ready = importlib.util.find_spec("workbench.evals") is not None
    labkit.callout(
        "This lab is coming with the evals capability (workbench.evals, issue 5). "
        + ("The library part is arriving: the guided lab follows in the next update."
           if _ready else "It is not in this version of the library yet.")
        + " Meanwhile, read the route-to-live playbook (docs/playbooks/route-to-live.md).",
        "warn")
    return


if __name__ == "__main__":
    app.run()
