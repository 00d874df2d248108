"""`presencesync doctor` and `presencesync account create` (the options live here so that
`cli.py` only registers them)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when used, so that `--help` stays fast
    from presencesync.service import SalesforceConnection


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"PRESENCESYNC_{name}", default)


DOCTOR_HELP = "preflight: check an account's Salesforce org and this server (exit 1 on a problem)"
DOCTOR_DESCRIPTION = (
    "Check that presencesync can work with the org: login and token (each configured "
    "OAuth flow), API version, the integration user's permissions, the mapped presence "
    "statuses and their access, the linked agents, the API budget, the bridge, and (with "
    "the change_data_capture setting on) the Change Data Capture subscription. "
    "Reads the account's stored connection and mapping (--account); connection flags "
    "check a connection before it is saved (--save-connection saves it when it works)."
)
ACCOUNT_HELP = "create an account; issue access tokens"


def add_doctor_arguments(doctor: argparse.ArgumentParser, default_database_url: str) -> None:
    doctor.description = DOCTOR_DESCRIPTION
    doctor.add_argument(
        "--database-url",
        default=_env("DATABASE_URL", default_database_url),
        help="the store (env PRESENCESYNC_DATABASE_URL)",
    )
    doctor.add_argument(
        "--account", default=_env("ACCOUNT"), help="account id (env PRESENCESYNC_ACCOUNT)"
    )
    conn = doctor.add_argument_group(
        "Salesforce connection (instead of the stored one)",
        "Environment: PRESENCESYNC_SF_LOGIN_URL, _SF_AUDIENCE, _SF_CLIENT_ID, _SF_USERNAME, "
        "_SF_PRIVATE_KEY_FILE, _SF_CLIENT_SECRET (the secret itself), _SF_CA_FILE, "
        "_SF_PUBSUB_ENDPOINT.",
    )
    conn.add_argument(
        "--login-url",
        default=_env("SF_LOGIN_URL"),
        help="token endpoint host: https://login.salesforce.com, https://test.salesforce.com "
        "or your My Domain URL (default https://login.salesforce.com)",
    )
    conn.add_argument(
        "--audience",
        default=_env("SF_AUDIENCE"),
        help="JWT 'aud': https://login.salesforce.com (production), https://test.salesforce.com "
        "(sandbox) or an Experience Cloud site URL (default: from the login URL)",
    )
    conn.add_argument("--client-id", default=_env("SF_CLIENT_ID"), help="the app's Consumer Key")
    conn.add_argument(
        "--username", default=_env("SF_USERNAME"), help="integration user (JWT bearer flow)"
    )
    conn.add_argument(
        "--private-key-file",
        default=_env("SF_PRIVATE_KEY_FILE"),
        help="PEM private key whose certificate the app has (JWT bearer flow)",
    )
    conn.add_argument(
        "--client-secret-file",
        default=None,
        help="file holding the Consumer Secret (client credentials flow); or env "
        "PRESENCESYNC_SF_CLIENT_SECRET",
    )
    conn.add_argument(
        "--ca-file",
        default=_env("SF_CA_FILE"),
        help="CA bundle or certificate to trust for Salesforce (e.g. the emulator's cert.pem)",
    )
    conn.add_argument(
        "--pubsub-endpoint",
        default=_env("SF_PUBSUB_ENDPOINT"),
        help="Pub/Sub API for Change Data Capture: host:port (TLS), grpcs://host:port or "
        "grpc://host:port (plaintext: the emulator) (default api.pubsub.salesforce.com:7443)",
    )
    doctor.add_argument(
        "--change-data-capture",
        action="store_true",
        help="check the Change Data Capture subscription even if the account's "
        "change_data_capture setting is off (before turning it on)",
    )
    doctor.add_argument(
        "--server-url",
        default=_env("PUBLIC_URL"),
        help="this server's public URL as agents' browsers reach it, e.g. "
        "https://presencesync.example.com (env PRESENCESYNC_PUBLIC_URL): checks the bridge "
        "and the CSP Trusted Site",
    )
    doctor.add_argument(
        "--api-version",
        default=None,
        help="the REST API version to check (default: the one presencesync uses)",
    )
    doctor.add_argument(
        "--budget-warning",
        type=float,
        default=10.0,
        metavar="PERCENT",
        help="warn when less than this share of the daily API requests is left (default 10)",
    )
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument(
        "--save-connection",
        action="store_true",
        help="store the given connection in --account when every login works",
    )


def add_account_arguments(account: argparse.ArgumentParser, default_database_url: str) -> None:
    account_sub = account.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    create = account_sub.add_parser("create", help="create an account; prints its id and token")
    create.add_argument("--database-url", default=_env("DATABASE_URL", default_database_url))
    create.add_argument("--name", required=True, help="the contact center's name")
    create.add_argument(
        "--no-omni-feature",
        action="store_true",
        help="create it without the Omni-Channel integration feature",
    )
    token = account_sub.add_parser(
        "token", help="issue an access token (admin, supervisor, or an agent's own)"
    )
    token.add_argument("--database-url", default=_env("DATABASE_URL", default_database_url))
    token.add_argument(
        "--account",
        required=_env("ACCOUNT") is None,
        default=_env("ACCOUNT"),
        help="account id (env PRESENCESYNC_ACCOUNT)",
    )
    token.add_argument("--role", required=True, choices=["admin", "supervisor", "agent"])
    token.add_argument("--agent", help="the agent's id (role agent)")
    token.add_argument("--label", default="", help="a note on what the token is for")


class UsageError(Exception):
    pass


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc


def _connection_from_flags(args: argparse.Namespace) -> SalesforceConnection | None:
    from presencesync.service import SalesforceConnection

    if not args.client_id:
        return None
    private_key = _read(args.private_key_file, "private key") if args.private_key_file else None
    secret = (
        _read(args.client_secret_file, "client secret file").strip()
        if args.client_secret_file
        else _env("SF_CLIENT_SECRET")
    )
    if private_key is None and not secret:
        raise UsageError(
            "--client-id needs --private-key-file (with --username) or a client secret "
            "(--client-secret-file or PRESENCESYNC_SF_CLIENT_SECRET)"
        )
    if private_key is not None and not args.username:
        raise UsageError("the JWT bearer flow needs --username")
    endpoint = args.pubsub_endpoint or None
    if endpoint is not None:
        from presencesync.service.cdc import pubsub_endpoint

        try:
            pubsub_endpoint(endpoint)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    return SalesforceConnection(
        login_url=(args.login_url or "https://login.salesforce.com").rstrip("/"),
        client_id=args.client_id,
        username=args.username or "",
        client_secret=secret or None,
        private_key_pem=private_key,
        verify=args.ca_file or True,
        audience=args.audience,
        pubsub_endpoint=endpoint,
    )


def run_doctor_command(args: argparse.Namespace) -> int:
    import asyncio

    from presencesync.salesforce import DEFAULT_API_VERSION
    from presencesync.service.doctor.probe import DoctorInputs, inputs_from_store, run_doctor

    api_version = args.api_version or DEFAULT_API_VERSION
    try:
        connection = _connection_from_flags(args)
    except UsageError as exc:
        print(f"presencesync doctor: {exc}", file=sys.stderr)
        return 2
    if args.account is None and connection is None:
        print(
            "presencesync doctor: give --account (its stored connection and mapping) or a "
            "connection (--client-id ...)",
            file=sys.stderr,
        )
        return 2
    if args.save_connection and (args.account is None or connection is None):
        print(
            "presencesync doctor: --save-connection needs --account and --client-id",
            file=sys.stderr,
        )
        return 2
    budget = args.budget_warning / 100
    engine = None
    try:
        if args.account is not None:
            from presencesync.domain import DomainError
            from presencesync.service import open_engine

            engine = open_engine(args.database_url)
            try:
                inputs = inputs_from_store(
                    engine,
                    args.account,
                    connection=connection,
                    server_url=args.server_url,
                    api_version=api_version,
                    budget_warning=budget,
                    change_data_capture=args.change_data_capture,
                )
            except DomainError as exc:
                print(f"presencesync doctor: {exc.message}", file=sys.stderr)
                return 2
        else:
            inputs = DoctorInputs(
                connection=connection,
                server_url=args.server_url,
                api_version=api_version,
                budget_warning=budget,
                change_data_capture=args.change_data_capture,
            )
        report = asyncio.run(run_doctor(inputs))
        saved = False
        # (connection is not None: checked with --save-connection above)
        if args.save_connection and engine is not None and connection is not None:
            logins = [c for c in report.checks if c.id.startswith("login")]
            if logins and all(c.status == "ok" for c in logins):
                engine.set_salesforce_connection(args.account, connection)
                saved = True
    finally:
        if engine is not None:
            engine.close()
    if args.json:
        body = report.to_api()
        if args.save_connection:
            body["connection_saved"] = saved
        print(json.dumps(body, indent=2))
    else:
        print(report.render_text())
        if args.save_connection:
            print(
                "Connection saved in the account."
                if saved
                else "Connection NOT saved: the login failed."
            )
    return report.exit_code


def run_account_command(args: argparse.Namespace) -> int:
    from presencesync.domain import DomainError
    from presencesync.service import open_engine

    if args.account_command == "token" and (args.role == "agent") != bool(args.agent):
        print("presencesync account token: --agent goes with --role agent", file=sys.stderr)
        return 2
    engine = open_engine(args.database_url)
    try:
        if args.account_command == "create":
            account_id = engine.create_account(args.name, omni_feature=not args.no_omni_feature)
            token = engine.create_token(account_id, "admin", label="first admin")
            body = {"account_id": account_id, "admin_token": token}
        else:
            token = engine.create_token(
                args.account, args.role, agent_id=args.agent, label=args.label
            )
            body = {"account_id": args.account, "role": args.role, "token": token}
            if args.agent:
                body["agent_id"] = args.agent
    except DomainError as exc:
        print(f"presencesync account: {exc.message}", file=sys.stderr)
        return 2
    finally:
        engine.close()
    print(json.dumps(body, indent=2))
    return 0
