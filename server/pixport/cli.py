"""The `pixport` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence

from pixport.config import Settings
from pixport.domain.auth import KNOWN_SCOPES, derive_client_secret, mint_token
from pixport.keys import load_server_key


def database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    from pixport.runtime.postgres import EmbeddedPostgres

    return EmbeddedPostgres(settings.postgres_dir).dsn


def _configure_logging(name: str) -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format=f"%(asctime)s {name}[%(process)d] %(levelname)s %(name)s: %(message)s",
    )


def cmd_up(settings: Settings, _args: argparse.Namespace) -> int:
    from pixport.runtime.supervisor import Supervisor

    return Supervisor(settings).run()


def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    from pixport.server import serve

    _configure_logging("server")
    asyncio.run(serve(settings, database_url(settings)))
    return 0


def cmd_worker(settings: Settings, _args: argparse.Namespace) -> int:
    from pixport.worker import run_worker

    _configure_logging("worker")
    asyncio.run(run_worker(settings, database_url(settings)))
    return 0


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from pixport.store.db import migrate

    applied = asyncio.run(migrate(database_url(settings)))
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def cmd_client_create(settings: Settings, args: argparse.Namespace) -> int:
    from pixport.store.db import create_pool
    from pixport.store.organizations import OrganizationStore

    async def create() -> dict[str, str]:
        pool = await create_pool(database_url(settings), max_size=1)
        try:
            client = await OrganizationStore(pool).create_api_client(args.org, tuple(args.scope or KNOWN_SCOPES))
        finally:
            await pool.close()
        secret = derive_client_secret(load_server_key(settings.data_dir), client.id, client.secret_generation)
        return {"client_id": client.id, "secret": secret, "org": args.org,
                "organization_id": client.organization_id, "scopes": " ".join(client.scopes)}

    print(json.dumps(asyncio.run(create())))
    return 0


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    from pixport.store.db import create_pool
    from pixport.store.organizations import OrganizationStore

    async def lookup() -> tuple[int, tuple[str, ...]] | None:
        pool = await create_pool(database_url(settings), max_size=1)
        try:
            client = await OrganizationStore(pool).get_api_client(args.client)
        finally:
            await pool.close()
        return (client.secret_generation, client.scopes) if client else None

    found = asyncio.run(lookup())
    if found is None:
        print(f"pixport: no API client {args.client!r}", file=sys.stderr)
        return 2
    generation, allowed = found
    scopes = args.scope or list(allowed)
    refused = [scope for scope in scopes if scope not in allowed]
    if refused:
        print(f"pixport: client {args.client} may not use scope(s) {', '.join(refused)}", file=sys.stderr)
        return 2
    abilities = {album: {"Access": {"image_upload": True}} for album in args.album or ()}
    secret = derive_client_secret(load_server_key(settings.data_dir), args.client, generation)
    print(mint_token(secret, issuer=args.client, scopes=scopes, ttl_seconds=args.ttl, abilities=abilities))
    return 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from pixport.import_command import main_import

    server = args.server or f"127.0.0.1:{settings.grpc_port}"
    return main_import(args.file, server, args.token or os.environ.get("PIXPORT_TOKEN"), args.watch)


def cmd_webhook_secret(settings: Settings, args: argparse.Namespace) -> int:
    from pixport.domain.webhooks import webhook_secret
    from pixport.store.db import create_pool
    from pixport.store.organizations import OrganizationStore

    async def lookup() -> str | None:
        pool = await create_pool(database_url(settings), max_size=1)
        try:
            return await OrganizationStore(pool).organization_id(args.org)
        finally:
            await pool.close()

    organization_id = asyncio.run(lookup())
    if organization_id is None:
        print(f"pixport: no organisation {args.org!r}", file=sys.stderr)
        return 2
    print(webhook_secret(load_server_key(settings.data_dir), organization_id))
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="pixport", description="pixport image import service")
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start PostgreSQL (unless DATABASE_URL), server, workers and Envoy") \
        .set_defaults(handler=cmd_up)
    commands.add_parser("serve", help="run the gRPC server").set_defaults(handler=cmd_serve)
    commands.add_parser("worker", help="run a worker").set_defaults(handler=cmd_worker)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(handler=cmd_migrate)

    client = commands.add_parser("client", help="API clients").add_subparsers(dest="action", required=True)
    create = client.add_parser("create", help="create an API client (and its organisation if new)")
    create.add_argument("--org", required=True, help="organisation name")
    create.add_argument("--scope", action="append", choices=KNOWN_SCOPES, help="allowed scope (default: all)")
    create.set_defaults(handler=cmd_client_create)

    token = commands.add_parser("token", help="mint a JWT for an API client")
    token.add_argument("--client", required=True, help="API client id")
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

    secret = commands.add_parser("webhook-secret", help="print an organisation's webhook signing secret")
    secret.add_argument("--org", required=True, help="organisation name")
    secret.set_defaults(handler=cmd_webhook_secret)
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
