"""The operator's command line for model versions (`make models ARGS=...`; also inside the page's container).

    python -m app.cli list
    python -m app.cli register mnist-v2.0.mar [--workers 1] [--set-default]
    python -m app.cli set-default 2.0
    python -m app.cli unregister 2.0
    python -m app.cli scale 2.0 --workers 2
    python -m app.cli review                                   # how many suggested corrections wait
    python -m app.cli approve --network 127.0.0.0/24           # every unreviewed label from that network
    python -m app.cli reject --browser BROWSER_ID              # every unreviewed label of that browser

It shares everything with the admin page (/models): the management client and the version policy; the remembered
default, the live accuracy and the review queue (corrections approved to train, training/screen.py) are in
PostgreSQL. Its services come from the app's wiring (app/context.py: `version_control`, `operator_stores`); this
module parses the command, runs it and says the result.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from pathlib import Path

from app.context import operator_stores, version_control
from db.embedded import PrivateServerError
from db.review import Decision, ReviewStore
from records.errors import ManagementError, StoreUnavailable
from records.stats import VersionStats
from records.versions import Version
from serving.management import ModelManager
from serving.versions import promote
from settings import Settings, SettingsError, load

UNREACHABLE = (StoreUnavailable, PrivateServerError)  # the database cannot be reached (or `make run`'s is not running)


async def _accuracy(settings: Settings) -> dict[str, VersionStats] | None:
    """Live accuracy per version from user feedback, or None when the database is not reachable."""
    try:
        async with operator_stores(settings) as stores:
            return (await stores.records.stats()).per_version
    except UNREACHABLE:
        return None


def _format_versions(versions: list[Version], accuracy: dict[str, VersionStats] | None) -> str:
    rows = [("VERSION", "DEFAULT", "WORKERS", "BATCH", "LIVE ACCURACY", "ARCHIVE")]
    for v in versions:
        stats = (accuracy or {}).get(v.version)
        if accuracy is None:
            live = "(database not reachable)"
        elif stats is None or not stats.labelled:
            live = "no feedback yet"
        else:
            live = f"{stats.rate:.1%} of {stats.labelled} labelled"
        workers = f"{v.ready_workers}/{len(v.workers)} ready"
        rows.append((v.version, "*" if v.is_default else "", workers, f"{v.batch_size}/{v.max_batch_delay}ms", live,
                     v.archive))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _archive_in_store(argument: str, store_dir: Path) -> str:
    """The archive's file name in the model store; a path elsewhere is copied in (TorchServe only loads from it)."""
    path = Path(argument)
    if len(path.parts) == 1 and (store_dir / path).exists():
        return path.name
    if not path.exists():
        raise ManagementError(f"no archive {argument} (looked in {store_dir} too): build it with `make archive`")
    if path.suffix != ".mar":
        raise ManagementError(f"{argument} is not a .mar archive")
    target = store_dir / path.name
    if path.resolve() != target.resolve():
        if target.exists():
            raise ManagementError(f"{target} exists already; remove it or rename {argument}")
        shutil.copyfile(path, target)
    return path.name


async def _review(args: argparse.Namespace, settings: Settings) -> str:
    """The review queue's size, or a batch decision for every unreviewed label of the browsers or networks named."""
    try:
        async with operator_stores(settings) as stores:
            return await _review_in(args, stores.review)
    except UNREACHABLE as exc:
        raise ManagementError(str(exc)) from exc


async def _review_in(args: argparse.Namespace, store: ReviewStore) -> str:
    if args.command == "review":
        size = await store.size()
        return (
            f"{size.suggestions} suggested correction(s) from {size.browsers} browser(s) in {size.networks} "
            "network(s) wait for review (the admin page's Review queue shows them)"
        )
    decision: Decision = "approved" if args.command == "approve" else "rejected"
    changed = await store.decide_browsers(args.browser, decision, by="cli") if args.browser else 0
    changed += await store.decide_networks(args.network, decision, by="cli") if args.network else 0
    return f"{decision} {changed} label(s)"


async def _command(args: argparse.Namespace, settings: Settings) -> str:
    if args.command in ("review", "approve", "reject"):
        return await _review(args, settings)
    async with version_control(settings) as manager:
        if args.command == "list":
            versions = await manager.versions()
            if not versions:
                return f"no version of {manager.model_name} is loaded"
            return _format_versions(versions, await _accuracy(settings))
        if args.command == "register":
            archive = _archive_in_store(args.archive, settings.model_store)
            message = await manager.register(archive, workers=args.workers)
            if args.set_default:
                version = next(v.version for v in await manager.versions() if v.archive == archive)
                await _promote(manager, settings, version)
                message += f"; {version} is now the default"
            return message
        if args.command == "set-default":
            await _promote(manager, settings, args.version)
            return f"{manager.model_name} {args.version} is now the default (remembered across restarts)"
        if args.command == "unregister":
            await manager.unregister(args.version)
            return f"unregistered {manager.model_name} {args.version}"
        if args.command == "scale":
            await manager.scale(args.version, workers=args.workers)
            return f"{manager.model_name} {args.version} runs {args.workers} worker(s)"
    raise AssertionError(args.command)


async def _promote(manager: ModelManager, settings: Settings, version: str) -> None:
    try:
        async with operator_stores(settings) as stores:
            await promote(manager, stores.defaults, version, by="cli")
    except UNREACHABLE as exc:
        raise ManagementError(str(exc)) from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="loaded versions, the default, workers and live accuracy")
    register = commands.add_parser("register", help="load an archive (file name in the model store, or a path)")
    register.add_argument("archive")
    register.add_argument("--workers", type=int, default=1)
    register.add_argument("--set-default", action="store_true", help="make it the default once loaded")
    set_default = commands.add_parser("set-default", help="answer /predictions/<model> with this version")
    set_default.add_argument("version")
    unregister = commands.add_parser("unregister", help="unload a version (not the default)")
    unregister.add_argument("version")
    scale = commands.add_parser("scale", help="set a version's number of workers")
    scale.add_argument("version")
    scale.add_argument("--workers", type=int, required=True)
    commands.add_parser("review", help="how many suggested corrections wait for review")
    for name in ("approve", "reject"):
        decide = commands.add_parser(name, help=f"{name} every unreviewed label of these browsers or networks")
        decide.add_argument("--browser", action="append", default=[], help="a browser id (repeatable)")
        decide.add_argument("--network", action="append", default=[], help="a network, e.g. 127.0.0.0/24 (repeatable)")
    args = parser.parse_args(argv)
    if args.command in ("approve", "reject") and not (args.browser or args.network):
        parser.error(f"{args.command} needs --browser or --network")
    try:
        print(asyncio.run(_command(args, load())))
    except (ManagementError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
