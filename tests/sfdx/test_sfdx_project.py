"""salesforce/ is a Salesforce DX project that `sf project deploy start` can deploy: the project
file, every metadata file parses and is in source format, the manifest lists exactly what the
folder holds, and the metadata uses the Metadata API's real element names and order.

The element lists are the Metadata API's (PermissionSet: its WSDL sequence; CspTrustedSite,
StaticResource, AuraDefinitionBundle: their field tables). No org is needed.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from presencesync.service.doctor.checks import AGENT_PERMISSION_SET, INTEGRATION_PERMISSION_SET
from presencesync_emulator import permissions as emulator_permissions

ROOT = Path(__file__).resolve().parents[2] / "salesforce"
PACKAGE = ROOT / "package"
NS = "http://soap.sforce.com/2006/04/metadata"
Q = f"{{{NS}}}"

# folder -> (metadata type, suffix of the source-format metadata file)
FOLDERS = {
    "aura": ("AuraDefinitionBundle", None),  # a bundle: one folder per component
    "cspTrustedSites": ("CspTrustedSite", ".cspTrustedSite-meta.xml"),
    "permissionsets": ("PermissionSet", ".permissionset-meta.xml"),
    "staticresources": ("StaticResource", ".resource-meta.xml"),
}

# PermissionSet's WSDL sequence (Metadata API): children must come in this order.
PERMISSION_SET_SEQUENCE = (
    "agentAccesses",
    "applicationVisibilities",
    "classAccesses",
    "customMetadataTypeAccesses",
    "customPermissions",
    "customSettingAccesses",
    "description",
    "emailRoutingAddressAccesses",
    "externalCredentialPrincipalAccesses",
    "externalDataSourceAccesses",
    "fieldPermissions",
    "flowAccesses",
    "genComputingSummaryDefAccesses",
    "hasActivationRequired",
    "label",
    "license",
    "objectPermissions",
    "pageAccesses",
    "recordTypeVisibilities",
    "servicePresenceStatusAccesses",
    "tabSettings",
    "userPermissions",
)
OBJECT_PERMISSIONS_SEQUENCE = (
    "allowCreate",
    "allowDelete",
    "allowEdit",
    "allowRead",
    "modifyAllRecords",
    "object",
    "viewAllFields",
    "viewAllRecords",
)
OPTIONAL_OBJECT_PERMISSIONS = {"viewAllFields"}
# User permission API names (PermissionSet.Permissions<Name> in SOQL) the package uses.
USER_PERMISSIONS = {"ApiEnabled", "ApiUserOnly", "ViewSetup"}
CSP_FIELDS = (
    "canAccessCamera",
    "canAccessMicrophone",
    "context",
    "description",
    "endpointUrl",
    "isActive",
    "isApplicableToConnectSrc",
    "isApplicableToFontSrc",
    "isApplicableToFrameSrc",
    "isApplicableToImgSrc",
    "isApplicableToMediaSrc",
    "isApplicableToStyleSrc",
)
CSP_CONTEXTS = {"All", "Communities", "FieldServiceMobileExtension", "LEX", "VisualForce"}


def parse(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def local(element: ET.Element) -> str:
    return element.tag.removeprefix(Q)


def children(element: ET.Element) -> list[str]:
    return [local(c) for c in element]


def text(element: ET.Element, name: str) -> str | None:
    found = element.find(Q + name)
    return None if found is None else (found.text or "")


def project() -> dict:
    return json.loads((ROOT / "sfdx-project.json").read_text())


def components() -> set[tuple[str, str]]:
    """(metadata type, member) for every component in the package folder, as Salesforce CLI
    resolves source format: the folder names the type, the file (or bundle folder) the member."""
    found: set[tuple[str, str]] = set()
    for folder in sorted(p for p in PACKAGE.iterdir() if p.is_dir()):
        assert folder.name in FOLDERS, f"{folder.name}/ is not a metadata folder we know"
        kind, suffix = FOLDERS[folder.name]
        if suffix is None:
            for bundle in folder.iterdir():
                meta = bundle / f"{bundle.name}.cmp-meta.xml"
                assert meta.exists(), f"{bundle} has no {meta.name}"
                found.add((kind, bundle.name))
            continue
        for path in folder.iterdir():
            if path.name.endswith(suffix):
                found.add((kind, path.name.removesuffix(suffix)))
            elif kind == "StaticResource" and (folder / f"{path.stem}.resource-meta.xml").exists():
                continue  # the resource's content
            else:
                pytest.fail(f"{path.relative_to(ROOT)} is not source-format metadata")
    return found


def manifest() -> tuple[set[tuple[str, str]], str | None]:
    root = parse(ROOT / "manifest" / "package.xml")
    listed = {
        (text(types, "name") or "", member.text or "")
        for types in root.findall(Q + "types")
        for member in types.findall(Q + "members")
    }
    return listed, text(root, "version")


def test_the_project_file() -> None:
    config = project()
    directories = config["packageDirectories"]
    assert directories == [{"path": "package", "default": True}]
    assert (ROOT / directories[0]["path"]).is_dir()
    assert re.fullmatch(r"\d{2}\.0", config["sourceApiVersion"])
    assert config["sfdcLoginUrl"] == "https://login.salesforce.com"
    assert set(config) <= {
        "name",
        "namespace",
        "packageDirectories",
        "sfdcLoginUrl",
        "sourceApiVersion",
    }


def test_every_xml_file_parses_as_metadata() -> None:
    files = [p for p in ROOT.rglob("*") if p.suffix == ".xml"]
    assert len(files) >= 6
    for path in files:
        root = parse(path)
        assert root.tag.startswith(Q), f"{path}: not in the Metadata API namespace"
    # Aura markup is well-formed XML too, with undeclared prefixes (aura:, lightning:, ...).
    for path in (PACKAGE / "aura").rglob("*"):
        if path.suffix in (".cmp", ".design"):
            markup = path.read_text()
            prefixes = sorted(set(re.findall(r"</?([A-Za-z]+):", markup)))
            declared = " ".join(f'xmlns:{p}="urn:{p}"' for p in prefixes)
            ET.fromstring(f"<markup {declared}>{markup}</markup>")


def test_no_metadata_api_format_leftovers() -> None:
    assert not (PACKAGE / "package.xml").exists(), "the manifest lives in manifest/"
    assert not list(PACKAGE.rglob("*.cspTrustedSite")), "source format: .cspTrustedSite-meta.xml"
    assert not list(PACKAGE.rglob("*.permissionset")), "source format: .permissionset-meta.xml"
    # the static resource stays where bridge.js is copied to
    assert (PACKAGE / "staticresources" / "PresenceSyncBridge.resource").is_file()


def test_the_manifest_lists_exactly_the_components() -> None:
    listed, version = manifest()
    assert listed == components()
    assert version == project()["sourceApiVersion"]
    bundle = parse(PACKAGE / "aura" / "PresenceSyncBridge" / "PresenceSyncBridge.cmp-meta.xml")
    assert text(bundle, "apiVersion") == version


def test_each_metadata_file_is_of_its_folders_type() -> None:
    for kind, member in components():
        folder = next(f for f, (k, _) in FOLDERS.items() if k == kind)
        suffix = FOLDERS[folder][1] or ".cmp-meta.xml"
        path = (
            PACKAGE / folder / member / f"{member}{suffix}"
            if kind == "AuraDefinitionBundle"
            else PACKAGE / folder / f"{member}{suffix}"
        )
        assert local(parse(path)) == kind, path


def _check_booleans(element: ET.Element, where: str) -> None:
    for child in element.iter():
        name = local(child)
        if name.startswith(("allow", "is", "has", "view", "modify", "enabled", "can")):
            assert child.text in ("true", "false"), f"{where}: {name} = {child.text!r}"


@pytest.mark.parametrize("name", [INTEGRATION_PERMISSION_SET, AGENT_PERMISSION_SET])
def test_permission_sets_use_the_metadata_apis_elements(name: str) -> None:
    path = PACKAGE / "permissionsets" / f"{name}.permissionset-meta.xml"
    root = parse(path)
    names = children(root)
    unknown = set(names) - set(PERMISSION_SET_SEQUENCE)
    assert not unknown, f"not PermissionSet fields: {unknown}"
    order = [PERMISSION_SET_SEQUENCE.index(n) for n in names]
    assert order == sorted(order), f"{path.name}: elements out of the WSDL's order: {names}"
    assert text(root, "label")
    _check_booleans(root, path.name)
    for permission in root.findall(Q + "objectPermissions"):
        fields = children(permission)
        required = [f for f in OBJECT_PERMISSIONS_SEQUENCE if f not in OPTIONAL_OBJECT_PERMISSIONS]
        assert set(required) <= set(fields) <= set(OBJECT_PERMISSIONS_SEQUENCE)
        assert fields == [f for f in OBJECT_PERMISSIONS_SEQUENCE if f in fields]
    for permission in root.findall(Q + "userPermissions"):
        assert children(permission) == ["enabled", "name"]
        assert text(permission, "name") in USER_PERMISSIONS
    for access in root.findall(Q + "servicePresenceStatusAccesses"):
        assert children(access) == ["enabled", "servicePresenceStatus"]


def test_the_integration_permission_set_is_what_the_emulator_and_the_doctor_expect() -> None:
    root = parse(
        PACKAGE / "permissionsets" / f"{INTEGRATION_PERMISSION_SET}.permissionset-meta.xml"
    )
    enabled = {
        text(p, "name") for p in root.findall(Q + "userPermissions") if text(p, "enabled") == "true"
    }
    assert enabled == {"ApiEnabled", "ApiUserOnly", "ViewSetup"}
    readable = {
        text(p, "object"): text(p, "viewAllRecords")
        for p in root.findall(Q + "objectPermissions")
        if text(p, "allowRead") == "true"
    }
    # read, and every agent's rows (they belong to each agent): View All
    assert readable == dict.fromkeys(emulator_permissions.READ_CONTROLLED, "true")
    for p in root.findall(Q + "objectPermissions"):
        assert {text(p, f) for f in ("allowCreate", "allowEdit", "allowDelete")} == {"false"}
    assert emulator_permissions.INTEGRATION_PERMISSION_SET == INTEGRATION_PERMISSION_SET
    assert emulator_permissions.AGENT_PERMISSION_SET == AGENT_PERMISSION_SET


def test_the_csp_trusted_site() -> None:
    path = PACKAGE / "cspTrustedSites" / "PresenceSyncServer.cspTrustedSite-meta.xml"
    root = parse(path)
    names = children(root)
    assert set(names) <= set(CSP_FIELDS)
    assert names == [f for f in CSP_FIELDS if f in names]
    assert {"endpointUrl", "isActive"} <= set(names)
    assert text(root, "context") in CSP_CONTEXTS
    assert text(root, "isActive") == "true"
    assert text(root, "isApplicableToConnectSrc") == "true"
    assert re.fullmatch(r"wss://[^/]+", text(root, "endpointUrl") or "")
    _check_booleans(root, path.name)
    # the placeholder is explained where the admin edits it
    assert "BEFORE DEPLOYING" in path.read_text()


def test_the_static_resource_and_the_bundle_metadata() -> None:
    meta = parse(PACKAGE / "staticresources" / "PresenceSyncBridge.resource-meta.xml")
    assert set(children(meta)) <= {"cacheControl", "contentType", "description"}
    assert text(meta, "cacheControl") in ("Private", "Public")
    assert text(meta, "contentType") == "application/javascript"
    bundle = parse(PACKAGE / "aura" / "PresenceSyncBridge" / "PresenceSyncBridge.cmp-meta.xml")
    assert set(children(bundle)) <= {"apiVersion", "description"}


def test_forceignore_keeps_documentation_out_of_the_deploy() -> None:
    ignored = (ROOT / ".forceignore").read_text().split()
    assert "**/*.md" in ignored and "package.xml" in ignored
