import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 5 · Testing GenAI")

with app.setup:
    import importlib.util

    import labkit
    import marimo as mo


@app.cell
def _():
    mo.md(r"""
    # Lab 5 · Testing GenAI

    **Learning goals**

    - Climb the testing ladder: exact -> pattern -> schema -> semantic -> LLM-as-judge.
    - Write pytest tests for an LLM feature that are stable on a tiny model.
    - Know which rung to use for which kind of output.
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
