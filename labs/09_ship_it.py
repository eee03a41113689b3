import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 9 · Ship it")

with app.setup:
    import importlib.util

    import labkit
    import marimo as mo


@app.cell
def _():
    mo.md(r"""
    # Lab 9 · Ship it

    **Learning goals**

    - Run the production service and its health-check probes.
    - Gate a pull request on evals and nbmake in CI.
    - Load-test the service on loopback.
    - Track route-to-live metrics (lead time, change failure rate) for LLM features.
    """)
    return


@app.cell
def _():
    _ready = importlib.util.find_spec("workbench.service") is not None
    labkit.callout(
        "This lab is coming with the service and probes capability (workbench.service, issues 4 and 5). "
        + ("The library part is arriving: the guided lab follows in the next update."
           if _ready else "It is not in this version of the library yet.")
        + " Meanwhile, read the route-to-live playbook (docs/playbooks/route-to-live.md).",
        "warn")
    return


if __name__ == "__main__":
    app.run()
