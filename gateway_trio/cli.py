"""The `gateway-trio` command: serve, check-config."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from gateway_trio.config import DEFAULT_CONFIG, ConfigError, GatewayConfig, load_config


def describe(config: GatewayConfig) -> str:
    from gateway_trio.deployment import Deployment

    lines = [f"config: {config.source}", "model groups:"]
    groups: dict[str, list[Deployment]] = {}
    for model in config.models:
        deployment = Deployment.from_config(model)
        groups.setdefault(deployment.group, []).append(deployment)
    for name, deployments in groups.items():
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
    hooks = config.hooks
    names = hooks.callbacks + hooks.actors + hooks.input_callback + hooks.success_callback + hooks.failure_callback
    lines.append("hooks: " + (", ".join(names) if names else "none"))
    return "\n".join(lines)


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
    args = parser.parse_args(argv)

    if args.command == "check-config":
        try:
            config = load_config(args.path)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(describe(config))
        return 0

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per upstream call is noise
    config_path = args.config or os.environ.get("GATEWAY_CONFIG") or str(DEFAULT_CONFIG)
    try:
        config = load_config(config_path)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    workers = args.workers or config.server.workers
    from gateway_trio import server

    if workers > 1:
        server.run_workers(config_path, config, host, port, workers)
    else:
        server.run_single(config, host, port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
