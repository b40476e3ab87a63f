"""Where the stock client's time goes in the tracking calls below the 3x target, server time left out.

Not a test. Starts the gateway (SQLite, defaults), seeds it as `client_tracking.seed` does, and
`benchmarks/ceiling_server.py --replay-from <gateway>` (each call answered at once with the exact
bytes the gateway answered it once). For each call (one `log_batch` of 1,000 metrics, `search_runs`
over 600 runs, `get_metric_history` of `--history-points`): its median time against the gateway and
against the replaying server (the client's floor; the difference is the gateway's share), then the
call profiled with cProfile against the replaying server, the top functions by own time printed.

    PYTHONPATH=. .venv/bin/python benchmarks/client_floor_profile.py [--history-points 10000] [--top 12]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import client_tracking
from benchmarks.versus_mlflow import process
from tests.gateway_process import run_gateway

ROOT = Path(__file__).resolve().parent.parent


def calls(url: str, run_id: str, seeded: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(url)
    metrics = [Metric("profiled", float(i), i, i) for i in range(client_tracking.BATCH)]
    return {
        "log_batch of 1,000 metrics": lambda: client.log_batch(run_id, metrics=metrics, synchronous=True),
        "search_runs over 600 runs": lambda: client_tracking.search(url, seeded["searched"]),
        "get_metric_history": lambda: client.get_metric_history(seeded["history_run"], "loss"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history-points", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7, help="timed calls of each, the median reported")
    parser.add_argument("--top", type=int, default=12, help="functions listed per call")
    args = parser.parse_args()
    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory(prefix="client-floor-") as scratch:
        work = Path(scratch)
        with run_gateway(work / "gateway", "--backend-store-uri", f"sqlite:///{work / 'gateway.db'}") as gateway:
            seeded = client_tracking.seed(gateway.url, args.history_points)
            run_id = MlflowClient(gateway.url).create_run(seeded["work_experiment"]).info.run_id
            replay = [sys.executable, str(ROOT / "benchmarks" / "ceiling_server.py"), "--root", str(work)]
            with process("floor", [*replay, "--replay-from", gateway.url], work, {}) as (floor_url, _):
                on_gateway = calls(gateway.url, run_id, seeded)
                on_floor = calls(floor_url, run_id, seeded)
                for name in on_gateway:
                    on_gateway[name]()  # warm: lazy imports, and the floor records the answer
                    on_floor[name]()
                    server, _ = client_tracking._median_seconds(on_gateway[name], args.repeat)
                    floor, _ = client_tracking._median_seconds(on_floor[name], args.repeat)
                    print(
                        f"\n== {name}: gateway {server * 1000:.0f} ms, client floor {floor * 1000:.0f} ms "
                        f"(the client {floor / server:.0%} of the call)"
                    )
                    profile = cProfile.Profile()
                    profile.runcall(on_floor[name])
                    text = io.StringIO()
                    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(args.top)
                    print("\n".join(line for line in text.getvalue().splitlines() if line.strip()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
