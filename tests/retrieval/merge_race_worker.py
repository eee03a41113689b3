"""One of two writers racing on collections (test_retrieval_s3.py): for every line
``COLLECTION ROUND`` read from stdin it commits the SAME new chunk rows as its twin, through
``workbench.retrieval.ingest.upsert_documents`` (ingest's own commit), and prints
LanceDB's MergeResult as one JSON line. Keeping the connection warm between rounds makes
both writers plan their merge against the same table version most rounds.

    python merge_race_worker.py URI PLAIN_OPTIONS_JSON CREDENTIAL_ENV_JSON
The last argument maps options to the NAMES of the variables holding the credentials.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def main() -> None:
    import pyarrow as pa

    from workbench.retrieval.collections import Collections
    from workbench.retrieval.ingest import upsert_documents

    uri, plain, names = sys.argv[1], *map(json.loads, sys.argv[2:4])
    cols = Collections(uri, {**plain, **{opt: os.environ[var] for opt, var in names.items()}})
    tables: dict[str, Any] = {}
    print("ready", flush=True)
    for line in sys.stdin:
        name, r = line.split()
        table = tables.get(name) or tables.setdefault(name, cols.open(name))
        rows = [{"id": f"race{r}:{j}", "doc_id": f"race{r}", "source": f"race{r}.md",
                 "path": f"/race{r}.md", "text": f"round {r} chunk {j}", "chunk_hash": f"{r}.{j}",
                 "doc_hash": r, "chunk_index": j, "vector": [0.1 * j] * 4}
                for j in range(4)]
        # The collection's own schema: with its primary-key declaration, or without it.
        data = pa.Table.from_pylist(rows, schema=table.schema)
        res = upsert_documents(table, data, [f"race{r}"])
        print(json.dumps({"round": int(r), "attempts": res.num_attempts,
                          "inserted": res.num_inserted_rows, "updated": res.num_updated_rows,
                          "version": res.version}), flush=True)

if __name__ == "__main__":
    main()
