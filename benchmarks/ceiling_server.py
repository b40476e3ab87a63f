"""The ceiling the gateway is measured against: a plain aiohttp server that does no work.

PUT reads the body and discards it (answering the byte count); GET sends a file with aiohttp's own
`FileResponse` (sendfile). Same URL shape as the artifact API, so the same client drives it:
`PUT|GET /api/2.0/mlflow-artifacts/artifacts/<run>/<name>`, where GET serves `<root>/<name>` (the
first path segment, a run label, is ignored so every run reads the same source files). Any tracking
route (`/api/2.0/mlflow/...`) reads its body and answers `{}`: the stock client's own ceiling.

With `--replay-from URL` (the client's floor for each tracking call), a tracking request is instead
forwarded to that server the first time its method, path and query are seen, and the answer's status
and exact body bytes are kept; every later request of the same method, path and query (whatever its
body) gets those bytes back at once. The time the stock client then takes is its own: building and
sending the request, reading and parsing the answer, with no server work at all.

Run by `benchmarks/versus_mlflow.py` and `benchmarks/client_versus_mlflow.py`; by hand:
`python benchmarks/ceiling_server.py --root DIR [--replay-from URL]`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aiohttp import ClientSession, web

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def make_app(root: Path, replay_from: str | None = None) -> web.Application:
    async def put(request: web.Request) -> web.Response:
        received = 0
        async for chunk in request.content.iter_any():
            received += len(chunk)
        return web.json_response({"received": received})

    async def get(request: web.Request) -> web.StreamResponse:
        _, _, name = request.match_info["path"].partition("/")
        target = (root / name).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(target)

    async def tracking(request: web.Request) -> web.Response:
        body = await request.read()
        if replay_from is None:
            return web.json_response({})
        key = (request.method, request.path_qs)
        if key not in recorded:
            async with (
                ClientSession() as session,
                session.request(
                    request.method,
                    replay_from + request.path_qs,
                    data=body,
                    headers={"Content-Type": "application/json"},
                ) as answer,
            ):
                # read() undoes any Content-Encoding: the client gets the body the gateway meant
                recorded[key] = (answer.status, await answer.read())
        status, payload = recorded[key]
        return web.Response(status=status, body=payload, content_type="application/json")

    recorded: dict[tuple[str, str], tuple[int, bytes]] = {}

    app = web.Application(client_max_size=0)
    app.router.add_put(ARTIFACTS + "/{path:.+}", put)
    # The tracking API answered with `{}` and nothing done: the stock client's own ceiling for log_metric.
    app.router.add_route("*", "/api/2.0/mlflow/{path:.+}", tracking)
    app.router.add_get(ARTIFACTS + "/{path:.+}", get)
    app.router.add_get("/health", lambda _: web.Response(text="OK"))  # type: ignore[arg-type,return-value]
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="directory GET serves files from")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--replay-from", help="answer each tracking call with the bytes this server answered it once")
    args = parser.parse_args()
    web.run_app(
        make_app(args.root.resolve(), args.replay_from), host="127.0.0.1", port=args.port, access_log=None, print=None
    )


if __name__ == "__main__":
    main()
