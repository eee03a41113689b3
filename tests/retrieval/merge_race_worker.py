"""One of two writers racing on a collection (test_retrieval_s3.py): for every round number
read from stdin it commits the SAME new chunk rows as its twin, through
``workbench.retrieval.ingest.upsert_documents`` (ingest's own commit), and prints
LanceDB's MergeResult as one JSON line. Keeping the connection warm between rounds makes
both writers plan their merge against the same table version most rounds.

    python merge_race_worker.py URI COLLECTION PLAIN_OPTIONS_JSON CREDENTIAL_ENV_JSON
The last argument maps options to the NAMES of the variables holding the credentials.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    import pyarrow as pa

    from workbench.retrieval.collections import Collections
    from workbench.retrieval.ingest import upsert_documents

    uri, name, plain, names = sys.argv[1], sys.argv[2], *map(json.loads, sys.argv[3:5])
    cols = Collections(uri, {**plain, **{opt: os.environ[var] for opt, var in names.items()}})
    table = cols.open(name)
    schema = table.schema  # the collection's own schema, primary key declaration or not
    print("ready", flush=True)
    for line in sys.stdin:
        r = int(line)
        rows = [{"id": f"race{r}:{j}", "doc_id": f"race{r}", "source": f"race{r}.md",
                 "path": f"/race{r}.md", "text": f"round {r} chunk {j}", "chunk_hash": f"{r}.{j}",
                 "doc_hash": str(r), "chunk_index": j, "vector": [0.1 * j] * 4}
                for j in range(4)]
        res = upsert_documents(table, pa.Table.from_pylist(rows, schema=schema), [f"race{r}"])
        print(json.dumps({"round": r, "attempts": res.num_attempts,
                          "inserted": res.num_inserted_rows, "updated": res.num_updated_rows,
                          "version": res.version}), flush=True)


if __name__ == "__main__":
    main()
