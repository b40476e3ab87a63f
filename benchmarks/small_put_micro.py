"""CPU per small local put without HTTP: two trees' `LocalRepository._put_small`, alternated in one process.

Not a test: run it by hand. Loads the local adapter (`repositories/local.py`, or the `repositories/local/`
package) from `--base` and from this tree, then for
`--rounds` rounds stores `--files` 4 KiB files (at `1/run<i % 20>/artifacts/sub/f<i>.bin`, new
directories included) with each, one thread, and prints the process CPU microseconds per put.
Single-threaded, so other load on the machine moves it far less than an end-to-end run.

    .venv/bin/python benchmarks/small_put_micro.py --base /tmp/perf-base --files 2000 [--fsync]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from repositories.paths import ArtifactPath  # noqa: E402


def load(tree: Path, name: str) -> ModuleType:
    """`tree`'s local adapter: the single module `repositories/local.py` as `name`, or the package."""
    single = tree / "repositories" / "local.py"
    if not single.exists():
        return load_package(tree / "repositories" / "local")
    spec = importlib.util.spec_from_file_location(name, single)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def load_package(directory: Path) -> ModuleType:
    """The `repositories/local/` package in `directory`, loaded as `repositories.local`.

    Its modules import each other as `repositories.local.<module>`: they are loaded from `directory`
    under those names, then taken out of `sys.modules` again (the loaded classes keep them), and the
    modules found there before are put back, so that the other tree's package can be loaded next.
    """

    def ours() -> list[str]:
        return [key for key in sys.modules if key == "repositories.local" or key.startswith("repositories.local.")]

    before = {key: sys.modules.pop(key) for key in ours()}
    spec = importlib.util.spec_from_file_location(
        "repositories.local", directory / "__init__.py", submodule_search_locations=[str(directory)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["repositories.local"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        for key in ours():
            del sys.modules[key]
        sys.modules.update(before)
    return module


def cpu_us_per_put(module: ModuleType, files: int, fsync: bool, workdir: Path | None) -> float:
    body = os.urandom(4096)
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        repo = module.LocalRepository.open(Path(scratch) / "root", fsync=fsync)
        started = time.process_time()
        for index in range(files):
            path = ArtifactPath.parse(f"1/run{index % 20}/artifacts/sub/f{index}.bin")
            repo._put_small([body], repo._fs_path(path), path, None)
        return (time.process_time() - started) / files * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="the other source tree")
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fsync", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None, help="on the disk to measure (default: temp)")
    args = parser.parse_args()
    modules = {"base": load(args.base, "local_base"), "this tree": load(ROOT, "local_this")}
    results: dict[str, list[float]] = {name: [] for name in modules}
    for _ in range(args.rounds):
        for name, module in modules.items():
            results[name].append(cpu_us_per_put(module, args.files, args.fsync, args.workdir))
    for name, runs in results.items():
        print(f"{name}: {statistics.median(runs):.0f} CPU-us per put (runs {', '.join(f'{r:.0f}' for r in runs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
