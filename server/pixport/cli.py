"""The `pixport` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from pixport.config import Settings
from pixport.domain.auth import KNOWN_SCOPES, derive_client_secret, derive_user_token_secret, mint_token
from pixport.keys import load_server_key

if TYPE_CHECKING:
    from pixport.domain.auth import ClientRecord
    from pixport.store.organizations import OrganizationStore

T = TypeVar("T")


def database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    from pixport.runtime.postgres import EmbeddedPostgres

    return EmbeddedPostgres(settings.postgres_dir).dsn


def _configure_logging(name: str) -> None:
    """Structured logs (PIXPORT_LOG_FORMAT) and, with PIXPORT_METRICS_PORT, this process's metrics."""
    from pixport.observability import logs
    from pixport.observability.exposition import serve_own_metrics_if_asked

    logs.configure(name)
    serve_own_metrics_if_asked()


def cmd_up(settings: Settings, _args: argparse.Namespace) -> int:
    from pixport.runtime.supervisor import Supervisor

    return Supervisor(settings).run()


def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    from pixport.server import serve

    _configure_logging("server")
    asyncio.run(serve(settings, database_url(settings)))
    return 0


def cmd_worker(settings: Settings, _args: argparse.Namespace) -> int:
    from pixport.runtime.runner import run_worker

    _configure_logging("worker")
    asyncio.run(run_worker(settings, database_url(settings)))
    return 0


def cmd_edge(settings: Settings, _args: argparse.Namespace) -> int:
    """Envoy in front of the API processes in PIXPORT_API_ADDRESSES; exec'd, so it gets the signals."""
    from gateway import edge

    raw = os.environ.get("PIXPORT_API_ADDRESSES", "").strip() or f"{settings.grpc_host}:{settings.grpc_port}"
    try:
        addresses = edge.parse_addresses(raw)
    except ValueError as error:
        print(f"pixport: {error}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = settings.data_dir / f"edge-{settings.http_port}.yaml"
    config.write_text(edge.render(
        http_port=settings.http_port, grpc_port=settings.grpc_port, admin_port=settings.admin_port,
        http_host=settings.http_host, grpc_host=settings.grpc_host, api_addresses=addresses,
    ))
    print(f"pixport: edge on {settings.http_host}:{settings.http_port} → "
          + ", ".join(f"{host}:{port}" for host, port in addresses), file=sys.stderr, flush=True)
    command = edge.command(config)
    os.execv(command[0], command)  # noqa: S606 (our Envoy binary, no shell)


def cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    from pixport.runtime import checks
    from pixport.transport.health import grpc_problems

    problems: list[str] = []
    for address in args.grpc or ():
        problems += asyncio.run(grpc_problems(address))
    for url in args.http or ():
        problems += checks.http_problems(url)
    if not args.grpc and not args.http:
        problems += asyncio.run(checks.dependency_problems(settings, database_url(settings)))
    for problem in problems:
        print(f"pixport: {problem}", file=sys.stderr)
    return 1 if problems else 0


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from pixport.store.db import MigrationLockTimeout, migrate

    try:
        applied = asyncio.run(migrate(database_url(settings)))
    except MigrationLockTimeout as error:
        print(f"pixport: {error}", file=sys.stderr)
        return 1
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def cmd_client_create(settings: Settings, args: argparse.Namespace) -> int:
    scopes = tuple(args.scope or KNOWN_SCOPES)
    client = _with_store(settings, lambda store: store.create_api_client(args.org, scopes))
    secret = derive_client_secret(load_server_key(settings.data_dir), client.id, client.secret_generation)
    print(json.dumps({"client_id": client.id, "secret": secret, "org": args.org,
                      "organization_id": client.organization_id, "scopes": " ".join(client.scopes)}))
    return 0


def _with_store(settings: Settings, action: Callable[[OrganizationStore], Awaitable[T]]) -> T:
    from pixport.store.db import create_pool
    from pixport.store.organizations import OrganizationStore

    async def run() -> T:
        pool = await create_pool(database_url(settings), max_size=1)
        try:
            return await action(OrganizationStore(pool))
        finally:
            await pool.close()

    return asyncio.run(run())


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    abilities = {album: {"Access": {"image_upload": True}} for album in args.album or ()}
    server_key = load_server_key(settings.data_dir)
    if bool(args.client) == bool(args.user):
        print("pixport: give exactly one of --client or --user", file=sys.stderr)
        return 2
    if args.user:
        if args.scope:
            print("pixport: user tokens carry their user's rights, not scopes; drop --scope", file=sys.stderr)
            return 2
        user = _with_store(settings, lambda store: store.get_user(args.user))
        if user is None:
            print(f"pixport: no user {args.user!r}", file=sys.stderr)
            return 2
        secret = derive_user_token_secret(server_key, user.organization_id)
        print(mint_token(secret, user_id=user.id, ttl_seconds=args.ttl, abilities=abilities))
        return 0
    client = _with_store(settings, lambda store: store.get_api_client(args.client))
    if client is None:
        print(f"pixport: no API client {args.client!r}", file=sys.stderr)
        return 2
    scopes = args.scope or list(client.scopes)
    refused = [scope for scope in scopes if scope not in client.scopes]
    if refused:
        print(f"pixport: client {args.client} may not use scope(s) {', '.join(refused)}", file=sys.stderr)
        return 2
    secret = derive_client_secret(server_key, client.id, client.secret_generation)
    print(mint_token(secret, issuer=client.id, scopes=scopes, ttl_seconds=args.ttl, abilities=abilities))
    return 0


def cmd_client_rotate(settings: Settings, args: argparse.Namespace) -> int:
    client = _with_store(settings, lambda store: store.rotate_client(args.client, args.grace))
    if client is None:
        print(f"pixport: no API client {args.client!r}", file=sys.stderr)
        return 2
    secret = derive_client_secret(load_server_key(settings.data_dir), client.id, client.secret_generation)
    until = client.previous_generation_until.isoformat() if client.previous_generation_until else None
    print(json.dumps({"client_id": client.id, "secret": secret, "org": client.organization_name,
                      "previous_secret_valid_until": until}))
    return 0


def cmd_user_create(settings: Settings, args: argparse.Namespace) -> int:
    user = _with_store(settings, lambda store: store.create_user(args.org))
    print(json.dumps({"user_id": user.id, "org": args.org, "organization_id": user.organization_id}))
    return 0


def cmd_org_set_quota(settings: Settings, args: argparse.Namespace) -> int:
    raw = args.images_per_day.strip().lower()
    limit = None if raw in ("none", "unlimited") else int(raw)
    if limit is not None and limit < 0:
        print("pixport: --images-per-day must be >= 0 (or 'none')", file=sys.stderr)
        return 2
    if not _with_store(settings, lambda store: store.set_quota(args.org, limit)):
        print(f"pixport: no organisation {args.org!r}", file=sys.stderr)
        return 2
    print(json.dumps({"org": args.org, "images_per_day": limit}))
    return 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from pixport.transport.import_client import main_import

    server = args.server or f"127.0.0.1:{settings.grpc_port}"
    return main_import(args.file, server, args.token or os.environ.get("PIXPORT_TOKEN"), args.watch,
                       listens=_listens(settings))


def _listens(settings: Settings) -> str:
    return (f"127.0.0.1:{settings.grpc_port} for gRPC and http://127.0.0.1:{settings.http_port} for REST "
            "(PIXPORT_GRPC_PORT, PIXPORT_HTTP_PORT)")


def cmd_jobs(settings: Settings, args: argparse.Namespace) -> int:
    from pixport.transport import jobs_client

    target = jobs_client.Target(
        server=args.server or f"127.0.0.1:{settings.grpc_port}",
        token=args.token or os.environ.get("PIXPORT_TOKEN"), listens=_listens(settings),
    )
    if args.action == "list":
        return jobs_client.list_jobs(target, page_size=args.page_size, as_json=args.json)
    if args.action == "status":
        return jobs_client.job_status(target, args.id)
    if args.action == "watch":
        return jobs_client.watch_job(target, args.id)
    return jobs_client.cancel_job(target, args.id)


def add_jobs_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument("--token", help="bearer token (default: $PIXPORT_TOKEN)")
    connection.add_argument("--server", help="gRPC address (default: 127.0.0.1:$PIXPORT_GRPC_PORT)")
    jobs = commands.add_parser("jobs", help="list, follow and cancel import jobs (over gRPC)")
    actions = jobs.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", parents=[connection], help="the organisation's jobs, newest first")
    listing.add_argument("--page-size", type=int, default=50, help="how many (default 50, at most 200)")
    listing.add_argument("--json", action="store_true", help="one JSON job per line instead of a table")
    for name, text in (("status", "print a job's status document (JSON)"),
                       ("watch", "show a job's live progress until it finishes"),
                       ("cancel", "cancel a job's images not processed yet")):
        action = actions.add_parser(name, parents=[connection], help=text)
        action.add_argument("id", help="job id")
    jobs.set_defaults(handler=cmd_jobs)


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pixport")
    except PackageNotFoundError:
        return "unknown"


def cmd_webhook_secret(settings: Settings, args: argparse.Namespace) -> int:
    from pixport.domain.webhooks import webhook_secret

    organization_id = _with_store(settings, lambda store: store.organization_id(args.org))
    if organization_id is None:
        print(f"pixport: no organisation {args.org!r}", file=sys.stderr)
        return 2
    print(webhook_secret(load_server_key(settings.data_dir), organization_id))
    return 0


def cmd_connector(settings: Settings, args: argparse.Namespace) -> int:
    from pixport.fetch import validate_url
    from pixport.sealing import Sealer
    from pixport.store.db import create_pool
    from pixport.store.sharinpix import SharinpixStore

    if args.kind == "salesforce":
        try:
            instance_url = validate_url(args.instance_url)
        except ValueError as error:
            print(f"pixport: --instance-url: {error}", file=sys.stderr)
            return 2
        config = {"instance_url": instance_url, "client_id": args.client_id, "client_secret": args.client_secret,
                  "refresh_token": args.refresh_token}
        if args.access_token:
            config["access_token"] = args.access_token
    else:
        config = {"api_secret": args.api_secret}

    async def save() -> str | None:
        pool = await create_pool(database_url(settings), max_size=1)
        try:
            sealer = Sealer(load_server_key(settings.data_dir))
            return await SharinpixStore(pool, sealer).set_connector(args.org, args.kind, config)
        finally:
            await pool.close()

    if asyncio.run(save()) is None:
        print(f"pixport: no organisation {args.org!r}", file=sys.stderr)
        return 2
    print(json.dumps({"org": args.org, "connector": args.kind, "configured": True}))
    return 0


def cmd_console_url(settings: Settings, args: argparse.Namespace) -> int:
    """A sign-in link for the web console: reuses (or creates) a read/write client of the organisation and
    puts a fresh token in the URL fragment, which browsers never send to a server."""
    from urllib.parse import quote

    from pixport.domain.auth import READ_SCOPE, WRITE_SCOPE

    if args.ttl <= 0:
        print("pixport: --ttl must be a positive number of seconds", file=sys.stderr)
        return 2
    scopes = (READ_SCOPE, WRITE_SCOPE)

    async def find_or_create(store: OrganizationStore) -> ClientRecord:
        found = await store.find_api_client(args.org, scopes)
        return found if found is not None else await store.create_api_client(args.org, scopes)

    client = _with_store(settings, find_or_create)
    secret = derive_client_secret(load_server_key(settings.data_dir), client.id, client.secret_generation)
    token = mint_token(secret, issuer=client.id, scopes=scopes, ttl_seconds=args.ttl)
    print(f"{settings.public_url}/console/#token={quote(token, safe='')}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="pixport", description="pixport image import service")
    root.add_argument("--version", action="version", version=f"pixport {package_version()}")
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start PostgreSQL (unless DATABASE_URL), server, workers and Envoy") \
        .set_defaults(handler=cmd_up)
    commands.add_parser("serve", help="run the gRPC server").set_defaults(handler=cmd_serve)
    commands.add_parser("work", aliases=["worker"], help="run a worker (imports and webhook deliveries)") \
        .set_defaults(handler=cmd_worker)
    commands.add_parser("migrate", help="apply database migrations (safe when several run at once)") \
        .set_defaults(handler=cmd_migrate)
    commands.add_parser("edge", help="run the REST edge (Envoy) in front of PIXPORT_API_ADDRESSES") \
        .set_defaults(handler=cmd_edge)
    check = commands.add_parser("check", help="exit 0 if the database and blob store answer (or --grpc/--http)")
    check.add_argument("--grpc", action="append", metavar="HOST:PORT", help="check grpc.health.v1 there instead")
    check.add_argument("--http", action="append", metavar="URL", help="check that URL answers 200 instead")
    check.set_defaults(handler=cmd_check)

    client = commands.add_parser("client", help="API clients").add_subparsers(dest="action", required=True)
    create = client.add_parser("create", help="create an API client (and its organisation if new)")
    create.add_argument("--org", required=True, help="organisation name")
    create.add_argument("--scope", action="append", choices=KNOWN_SCOPES, help="allowed scope (default: all)")
    create.set_defaults(handler=cmd_client_create)

    rotate = client.add_parser("rotate", help="new secret; the old one keeps working for a grace period")
    rotate.add_argument("--client", required=True, help="API client id")
    rotate.add_argument("--grace", type=float, default=86400.0, help="seconds the old secret stays valid")
    rotate.set_defaults(handler=cmd_client_rotate)

    user = commands.add_parser("user", help="users").add_subparsers(dest="action", required=True)
    user_create = user.add_parser("create", help="create a user (and its organisation if new)")
    user_create.add_argument("--org", required=True, help="organisation name")
    user_create.set_defaults(handler=cmd_user_create)

    org = commands.add_parser("org", help="organisations").add_subparsers(dest="action", required=True)
    quota = org.add_parser("set-quota", help="images per rolling 24 hours ('none': no limit)")
    quota.add_argument("--org", required=True, help="organisation name")
    quota.add_argument("--images-per-day", required=True, help="a number, or 'none'")
    quota.set_defaults(handler=cmd_org_set_quota)

    token = commands.add_parser("token", help="mint a JWT for an API client or a user")
    token.add_argument("--client", help="API client id (token signed with the client's secret)")
    token.add_argument("--user", help="user id (token signed with the organisation's user-token secret)")
    token.add_argument("--scope", action="append", choices=KNOWN_SCOPES, help="scope (repeatable)")
    token.add_argument("--album", action="append", help="album the token may upload into (repeatable)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    token.set_defaults(handler=cmd_token)

    batch = commands.add_parser("import", help="submit a batch import file (the REST body) over gRPC")
    batch.add_argument("file", help="JSON file: {systemName, images: [{url, id, fileName}], ...}")
    batch.add_argument("--watch", action="store_true", help="show live progress until the job finishes")
    batch.add_argument("--token", help="bearer token (default: $PIXPORT_TOKEN)")
    batch.add_argument("--server", help="gRPC address (default: 127.0.0.1:$PIXPORT_GRPC_PORT)")
    batch.set_defaults(handler=cmd_import)

    connector = commands.add_parser("connector", help="connect an organisation to an image source")
    kinds = connector.add_subparsers(dest="kind", required=True)
    salesforce = kinds.add_parser("salesforce", help="Salesforce attachments and Files (OAuth refresh token)")
    salesforce.add_argument("--org", required=True, help="organisation name")
    salesforce.add_argument("--instance-url", required=True, help="e.g. https://mycompany.my.salesforce.com")
    salesforce.add_argument("--client-id", required=True, help="connected app consumer key")
    salesforce.add_argument("--client-secret", required=True, help="connected app consumer secret")
    salesforce.add_argument("--refresh-token", required=True, help="OAuth refresh token")
    salesforce.add_argument("--access-token", help="current access token (optional; refreshed on 401)")
    salesforce.set_defaults(handler=cmd_connector)
    cloudinary = kinds.add_parser("cloudinary", help="verify direct-upload results with the API secret")
    cloudinary.add_argument("--org", required=True, help="organisation name")
    cloudinary.add_argument("--api-secret", required=True, help="Cloudinary API secret")
    cloudinary.set_defaults(handler=cmd_connector)

    secret = commands.add_parser("webhook-secret", help="print an organisation's webhook signing secret")
    secret.add_argument("--org", required=True, help="organisation name")
    secret.set_defaults(handler=cmd_webhook_secret)

    console = commands.add_parser("console-url", help="print a web console link that signs in to an organisation")
    console.add_argument("--org", required=True, help="organisation name (created if new)")
    console.add_argument("--ttl", type=int, default=8 * 3600, help="token lifetime in seconds (default 8 hours)")
    console.set_defaults(handler=cmd_console_url)
    add_jobs_commands(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as error:
        print(f"pixport: {error}", file=sys.stderr)
        return 2
    code: int = args.handler(settings, args)
    return code


if __name__ == "__main__":
    sys.exit(main())
