"""Start ingestion when new files land."""

import hashlib
import os
from pathlib import Path

import dagster as dg

from orchestration.defs.ingest.schedules import ingest_job

LANDING_SOURCES = ("crm", "calendar", "phone", "reference")


def landing_fingerprint(root: Path) -> tuple[str, int]:
    """A digest of every landing file's path, size and modification time, and the number of files.

    The sensor compares this, not the warehouse, so it never opens the DuckDB file a running load is writing; the
    ingest assets then decide per file, by content hash, what is new.
    """
    digest = hashlib.sha256()
    count = 0
    for source in LANDING_SOURCES:
        for path in sorted((root / source).rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
                count += 1
    return digest.hexdigest(), count


@dg.sensor(job=ingest_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def new_landing_files(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Requests an ingest run when the landing folder changed since the last request."""
    root = Path(os.environ.get("LANDING_DIR", "data/landing"))
    if not root.exists():
        return dg.SkipReason(f"landing folder {root} does not exist")
    fingerprint, count = landing_fingerprint(root)
    if fingerprint == context.cursor:
        return dg.SkipReason(f"no change among {count} landing files")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=fingerprint, tags={"landing_files": str(count)})], cursor=fingerprint
    )
