"""The `gateway-trio` command: serve, check-config, import-litellm."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from gateway_trio.config import DEFAULT_CONFIG, ConfigError, GatewayConfig, load_config

if TYPE_CHECKING:
    from gateway_trio.frontend.handler import GatewayApp
    from gateway_trio.gateway import Gateway


def describe(gateway: Gateway) -> str:
    from gateway_trio.deployment import public_url

    config = gateway.config
    lines = [f"config: {config.source}"]
    if config.server.master_key is None:
        lines.append("auth: none (no server.master_key: every caller is admitted)")
    lines.append("model groups:")
    for name, deployments in gateway.router.groups.items():
        if deployments[0].provider == "pass_through":
            continue
        lines.append(f"  {name}")
        for d in deployments:
            base = f" at {d.public_api_base}" if d.public_api_base else ""
            lines.append(f"    - {d.id}: {d.provider}/{d.model}{base} (weight {d.weight:g})")
    for alias, target in config.router.aliases.items():
        lines.append(f"  {alias} -> {target} (alias)")
    lines.append("guardrails:" if config.guardrails else "guardrails: none")
    for g in config.guardrails:
        modes = g.mode if isinstance(g.mode, str) else ", ".join(g.mode)
        lines.append(f"  {g.name}: {g.guardrail} [{modes}]{' default_on' if g.default_on else ''}")
    for route in config.pass_through:
        lines.append(f"pass-through: {route.path} -> {public_url(route.target)}")
    hooks = config.hooks
    names = hooks.callbacks + hooks.actors + hooks.input_callback + hooks.success_callback + hooks.failure_callback
    lines.append("hooks: " + (", ".join(names) if names else "none"))
    return "\n".join(lines)


def build(path: str | None) -> GatewayApp:
    """Load the config at `path` and build everything `serve` runs, starting none of it."""
    from gateway_trio.frontend.app import create_app

    return create_app(load_config(path))


def fail(error: ConfigError) -> int:
    print(f"error: {error}", file=sys.stderr)
    return 1


def import_litellm(source: str, output: str | None) -> int:
    import tomli
    import yaml

    from gateway_trio.config import parse_config
    from gateway_trio.litellm.importer import convert
    from gateway_trio.litellm.toml_writer import dumps

    try:
        with open(source, encoding="utf-8") as handle:
            document = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as error:
        print(f"error: {source}: cannot read: {error}", file=sys.stderr)
        return 1
    if not isinstance(document, dict):
        print(f"error: {source}: expected a mapping at the top level", file=sys.stderr)
        return 1
    conversion = convert(document)
    text = f"# Converted from {os.path.basename(source)} by gateway-trio import-litellm\n\n" + dumps(
        conversion.config, subtables={"models": ("info",), "guardrails": ("params",)}
    )
    for line in conversion.report():  # every key not converted, so none is lost silently
        print(line, file=sys.stderr)
    try:
        parse_config(tomli.loads(text), output or "<output>", resolve_env=False)
    except ConfigError as error:
        print(f"error: the converted config does not validate:\n{error}", file=sys.stderr)
        return 1
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway-trio", description="An LLM API gateway on trio.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the gateway")
    serve.add_argument("--config", help=f"TOML config (default: $GATEWAY_CONFIG or {DEFAULT_CONFIG})")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--log-level", default=os.environ.get("GATEWAY_LOG_LEVEL", "INFO"))
    check = commands.add_parser("check-config", help="validate a config and print what it defines")
    check.add_argument("path")
    convert = commands.add_parser("import-litellm", help="convert a LiteLLM proxy config (YAML) to TOML")
    convert.add_argument("source", metavar="IN.yaml")
    convert.add_argument("-o", "--output", metavar="OUT.toml", help="write here instead of standard output")
    args = parser.parse_args(argv)

    if args.command == "import-litellm":
        return import_litellm(args.source, args.output)

    if args.command == "check-config":
        try:
            app = build(args.path)
        except ConfigError as error:
            return fail(error)
        print(describe(app.gateway))  # type: ignore[attr-defined]
        return 0

    import sqlite3

    from gateway_trio.control.database import migrate_database
    from gateway_trio.control.schema import SchemaError
    from gateway_trio.frontend import serving as server
    from gateway_trio.runtime.logs import configure_logging

    configure_logging(args.log_level)  # in text until the config says otherwise
    config_path = args.config or os.environ.get("GATEWAY_CONFIG") or str(DEFAULT_CONFIG)
    try:
        # Built before anything listens, so a bad config stops here with one line, in every mode.
        app = build(config_path)
    except ConfigError as error:
        return fail(error)
    config: GatewayConfig = app.gateway.config  # type: ignore[attr-defined]
    configure_logging(args.log_level, config.server.log_format)
    try:
        # Once, before any worker starts: a database that cannot be migrated stops here, in one line.
        migrate_database(config.database.url)
    except SchemaError as error:
        return fail(ConfigError(f"{config.source}: database.url: {error}"))
    except sqlite3.Error as error:  # locked past the busy timeout, a disk error: never the url
        return fail(ConfigError(f"{config.source}: database.url: cannot migrate the database: {error}"))
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    workers = args.workers or config.server.workers
    if workers > 1:  # `app` only proved the config builds: each worker process builds its own
        from gateway_trio.frontend.workers import run_workers

        return run_workers(config_path, config, host, port, workers, args.log_level)
    server.run_single(app, config, host, port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
