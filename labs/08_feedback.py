import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 8 · Feedback and metrics that matter")

with app.setup:
    import importlib.util

    import labkit
    import marimo as mo


@app.cell
def _():
    mo.md(r"""
    # Lab 8 · Feedback and metrics that matter

    **Learning goals**

    - Collect feedback with the chat widget: thumbs, copy, retry, edit.
    - Use implicit signals, and tell product metrics from vanity metrics.
    - Turn feedback into golden data for evals.
    """)
    return


@app.cell
def _():
    _ready = importlib.util.find_spec("workbench.observability") is not None
    labkit.callout(
        "This lab is coming with the observability (feedback) capability (workbench.observability, issue 4). "
        + ("The library part is arriving: the guided lab follows in the next update."
           if _ready else "It is not in this version of the library yet.")
        + " Meanwhile, read the route-to-live playbook (docs/playbooks/route-to-live.md).",
        "warn")
    return


if __name__ == "__main__":
    app.run()
