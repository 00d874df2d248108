"""Salesforce CLI itself reads salesforce/ as a project: `sf project convert source` (offline:
the source-to-Metadata-API conversion that `sf project deploy start` does before it sends
anything) recognises every component and builds the same manifest as manifest/package.xml.

Needs the Salesforce CLI (`.ci/install-sf-cli` puts it in ~/.cache/presencesync/sf-cli; or set
PRESENCESYNC_SF_CLI to an `sf` executable). Skipped when it is missing, except with CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.sfdx.test_sfdx_project import ROOT, Q, manifest, parse, text

CACHE = Path(os.environ.get("PRESENCESYNC_SF_CLI_DIR", Path.home() / ".cache/presencesync/sf-cli"))


def sf_cli() -> str:
    for candidate in (
        os.environ.get("PRESENCESYNC_SF_CLI"),
        str(CACHE / "node_modules" / ".bin" / "sf"),
        shutil.which("sf"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but the Salesforce CLI is missing: run .ci/install-sf-cli")
    pytest.skip("the Salesforce CLI is not installed (.ci/install-sf-cli)")


def test_sf_project_convert_source_recognises_every_component(tmp_path: Path) -> None:
    sf = sf_cli()
    project = tmp_path / "salesforce"
    shutil.copytree(ROOT, project)
    env = {
        **os.environ,
        "HOME": str(tmp_path),  # the CLI writes its config and logs under HOME
        "SF_DISABLE_TELEMETRY": "true",
        "SF_AUTOUPDATE_DISABLE": "true",
        "SF_USE_GENERIC_UNIX_KEYCHAIN": "true",
    }
    run = subprocess.run(
        [sf, "project", "convert", "source", "--output-dir", "out", "--json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    answer = json.loads(run.stdout[run.stdout.index("{") :])
    assert answer["status"] == 0 and answer.get("warnings", []) == [], answer

    out = project / "out"
    converted = parse(out / "package.xml")
    listed = {
        (text(types, "name") or "", member.text or "")
        for types in converted.findall(Q + "types")
        for member in types.findall(Q + "members")
    }
    ours, version = manifest()
    assert listed == ours
    assert text(converted, "version") == version
    # Metadata API format: what Salesforce receives
    for path in (
        "cspTrustedSites/PresenceSyncServer.cspTrustedSite",
        "permissionsets/PresenceSync_Integration.permissionset",
        "permissionsets/PresenceSync_Agent.permissionset",
        "staticresources/PresenceSyncBridge.resource",
        "staticresources/PresenceSyncBridge.resource-meta.xml",
        "aura/PresenceSyncBridge/PresenceSyncBridge.cmp",
        "aura/PresenceSyncBridge/PresenceSyncBridgeHelper.js",
    ):
        assert (out / path).is_file(), path
    assert not list(out.rglob("*.md")), "documentation must not be deployed"
    assert (out / "staticresources" / "PresenceSyncBridge.resource").read_bytes() == (
        ROOT / "package" / "staticresources" / "PresenceSyncBridge.resource"
    ).read_bytes()
