"""Generates a Python client with openapi-python-client from an OpenAPI schema and drives a
running Hedgerow through it, the way a user of a generated PostHog client would.

Usage: python generated_client.py SCHEMA BASE_URL API_KEY WORKDIR json|multipart hedgerow|posthog

SCHEMA is a file or a URL (Hedgerow's own `/api/schema/`). Every request is made by the generated
functions and every answer is parsed by the generated models (`from_dict`); a missing field, a
wrong type or an unknown enum value fails the run. The schema copy keeps one request body type:
`application/json`, or `multipart/form-data` (what the generated code sends when all three are
declared, except that it then also puts nested objects in form fields, which httpx refuses).

`posthog` is PostHog's published schema: it covers organizations and the organization-level
batch-export routes, so the run goes through those; its known quirks (the generator's, or the
schema's own, as `scripts/schemathesis` corrects them) are fixed in the copy here, never in the
server. Prints one line per step and `ok` at the end; exits non-zero at the first failure.
"""
import datetime
import enum
import importlib
import json
import os
import socket
import subprocess
import sys
import urllib.request
import uuid

import yaml

schema_source, base_url, api_key, workdir, body_mode, flavour = sys.argv[1:7]
os.makedirs(workdir, exist_ok=True)

# --- The schema copy -------------------------------------------------------------------------
if schema_source.startswith("http"):
    with urllib.request.urlopen(schema_source) as answer:
        spec = json.load(answer)
else:
    with open(schema_source) as handle:
        spec = yaml.safe_load(handle)

if flavour == "posthog":
    # PostHog answers these as an integer and an object; its schema says string (API.md §2.1).
    organization = spec["components"]["schemas"]["Organization"]["properties"]
    organization["member_count"] = {"type": "integer", "readOnly": True}
    organization["metadata"] = {"type": "object", "readOnly": True}
    # Enums that list null next to `nullable: true`: the generator makes a member of `None`.
    for component in spec["components"]["schemas"].values():
        for field in component.get("properties", {}).values():
            if isinstance(field.get("enum"), list) and None in field["enum"]:
                field["enum"] = [value for value in field["enum"] if value is not None]

for item in spec["paths"].values():
    for operation in item.values():
        content = operation.get("requestBody", {}).get("content") if isinstance(operation, dict) else None
        keep = "application/json" if body_mode == "json" else "multipart/form-data"
        for media_type in list(content or {}):
            if media_type != keep:
                del content[media_type]

schema_path = os.path.join(workdir, f"schema-{flavour}-{body_mode}.json")
with open(schema_path, "w") as handle:
    json.dump(spec, handle, default=str)  # YAML reads the examples' times as datetimes
config_path = os.path.join(workdir, "generator.yaml")
with open(config_path, "w") as handle:
    handle.write("post_hooks: []\n")
package = f"client_{flavour}_{body_mode}"
output = os.path.join(workdir, package)
generated = subprocess.run(
    [os.path.join(os.path.dirname(sys.executable), "openapi-python-client"), "generate", "--path", schema_path,
     "--output-path", output, "--meta", "none", "--overwrite", "--config", config_path],
    capture_output=True, text=True)
if generated.returncode != 0 or "Unable to" in generated.stdout:
    sys.exit(f"openapi-python-client failed:\n{generated.stdout}\n{generated.stderr}")
sys.path.insert(0, workdir)
client_module = importlib.import_module(f"{package}.client")
client = client_module.AuthenticatedClient(base_url=base_url, token=api_key, raise_on_unexpected_status=True)


# --- Calling generated operations ------------------------------------------------------------
def operation(tag, operation_id):
    try:
        return importlib.import_module(f"{package}.api.{tag}.{operation_id}")
    except ModuleNotFoundError:  # the generator appends `_` to names Python has (`list`)
        return importlib.import_module(f"{package}.api.{tag}.{operation_id}_")


def model(name, data, copied_from=None):
    """A generated model built from JSON: `data` are the fields the client sets; `copied_from`,
    an object it read and sends back whole (read-only fields and all). In form bodies the
    generated code writes values as Python text (`None`, `['a']`), which PostHog's serializers
    refuse as Hedgerow does, so there the copy gives only the fields the model requires."""
    if copied_from is not None:
        required = set(spec["components"]["schemas"][name].get("required", []))
        base = {key: value for key, value in copied_from.items() if body_mode == "json" or key in required}
        data = dict(base, **data)
    module_name = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return getattr(importlib.import_module(f"{package}.models.{module_name}"), name).from_dict(data)


def call(tag, operation_id, *path, expect=200, body=None, **query):
    module = operation(tag, operation_id)
    for key, value in list(query.items()):
        # Query parameters with an enum type take the generated enum.
        camel = "".join(part.capitalize() for part in key.split("_"))
        for attribute in vars(module).values():
            if (isinstance(attribute, type) and issubclass(attribute, enum.Enum) and attribute.__module__.startswith(package)
                    and attribute.__name__.endswith((camel, camel + "Item"))):
                query[key] = [attribute(v) for v in value] if isinstance(value, list) else attribute(value)
    if body is not None:
        query["body"] = body
    response = module.sync_detailed(*path, client=client, **query)
    if response.status_code != expect:
        sys.exit(f"{operation_id}: status {response.status_code}, expected {expect}: {response.content[:500]!r}")
    if declares_body(operation_id, expect) and response.parsed is None:
        sys.exit(f"{operation_id}: the answer was not parsed: {response.content[:500]!r}")
    print(f"{operation_id}: {response.status_code}")
    return response.parsed, json.loads(response.content) if response.content else None


def declares_body(operation_id, status):
    """Whether the schema gives this answer a body (PostHog's leaves some actions' answers bare)."""
    for item in spec["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                return "content" in operation.get("responses", {}).get(str(status), {})
    sys.exit(f"no operation {operation_id} in the schema")


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


# --- Organizations ---------------------------------------------------------------------------
organizations = "organizations"
if flavour == "posthog":
    ids = {"list": "list", "create": "create", "retrieve": "retrieve", "partial_update": "partial_update",
           "destroy": "destroy"}
else:
    ids = {action: f"organizations_{action}" for action in ["list", "create", "retrieve", "partial_update", "destroy"]}

listed, _ = call(organizations, ids["list"])
assert listed.count >= 1, listed
_, home = call(organizations, ids["retrieve"], "@current")
# The whole model, read-only fields included, as the generator's constructor demands them.
name = f"Generated {flavour} {body_mode}"
created, created_json = call(organizations, ids["create"], expect=201, body=model("Organization", {"name": name}, home))
assert created.name == name and str(created.id) != home["id"], created_json
_, current = call(organizations, ids["retrieve"], "@current")  # sent as %40current
assert current["id"] == created_json["id"], current
patched, _ = call(organizations, ids["partial_update"], created_json["id"],
                  body=model("PatchedOrganization", {"name": "Renamed"}))
assert patched.name == "Renamed"
org = created_json["id"]

# Events for the backfills to export (capture is not part of the API schema: plain HTTP).
token = created_json["teams"][0]["api_token"]
events = [{"event": "generated client", "distinct_id": f"user-{i}", "timestamp": f"2026-0{1 + i % 2}-01T00:{i:02d}:00Z",
           "properties": {"i": i}} for i in range(20)]
capture = urllib.request.Request(f"{base_url}/batch/", data=json.dumps({"api_key": token, "batch": events}).encode(),
                                 headers={"Content-Type": "application/json"})
with urllib.request.urlopen(capture) as answer:
    assert answer.status == 200

# --- Batch exports ---------------------------------------------------------------------------
if flavour == "posthog":
    parents = [("organizations", "batch_exports", org)]
else:
    parents = [("organizations", "organizations_batch_exports", org)]

if flavour == "hedgerow":
    # --- Top-level projects, environments, members, users, keys ------------------------------
    projects, _ = call("projects", "projects_list")
    assert projects.count >= 1 and projects.results[0].organization == uuid.UUID(org), projects
    project_id = projects.results[0].id
    project, _ = call("projects", "projects_retrieve", "@current")
    assert project.id == project_id and project.effective_membership_level is not None
    call("projects", "projects_retrieve", str(project_id))
    renamed, _ = call("projects", "projects_partial_update", str(project_id),
                      body=model("PatchedProjectBackwardCompat", {"name": "Web", "timezone": "Europe/Berlin"}))
    assert renamed.name == "Web" and renamed.timezone == "Europe/Berlin"
    extra, extra_json = call(organizations, "organizations_projects_create", org, expect=201,
                             body=model("ProjectBackwardCompat", {"name": "Extra"}, project.to_dict()))
    call(organizations, "organizations_projects_list", org)
    call(organizations, "organizations_projects_retrieve", org, str(extra.id))
    call("projects", "projects_destroy", str(extra.id), expect=204)

    environments, _ = call("projects", "projects_environments_list", str(project_id))
    assert environments.count == 1
    _, main = call("environments", "environments_retrieve", "@current")
    staging, staging_json = call("projects", "projects_environments_create", str(project_id), expect=201,
                                 body=model("Team", {"name": "Staging"}, main))
    call("projects", "projects_environments_retrieve", str(project_id), str(staging.id))
    call("environments", "environments_partial_update", str(staging.id), body=model("PatchedTeam", {"name": "QA"}))
    reset, _ = call("environments", "environments_reset_token_create", str(staging.id))
    assert reset.api_token != staging.api_token
    call("environments", "environments_destroy", str(staging.id), expect=204)

    members, _ = call(organizations, "organizations_members_list", org)
    assert members.count == 1 and members.results[0].level.value == 15, members
    me, _ = call("users", "users_me_retrieve")
    assert str(me.organization.id) == org and me.team.id == project_id
    call("users", "users_list")
    keys, _ = call("personal_api_keys", "personal_api_keys_list")
    call("personal_api_keys", "personal_api_keys_retrieve", keys[0].id)
    parents += [("projects", "projects_batch_exports", str(project_id)),
                ("environments", "environments_batch_exports", str(project_id))]

for tag, prefix, parent in parents:
    body = {
        # On the organization route `team_id` names the environment to export; elsewhere it is ignored.
        "id": str(uuid.uuid4()), "team_id": created_json["teams"][0]["id"], "name": f"{prefix} export",
        "destination": {"type": "NoOp", "config": {}}, "interval": "hour", "created_at": now(),
        "last_updated_at": now(), "latest_runs": [], "schema": None,
    }
    export, export_json = call(tag, f"{prefix}_create", parent, expect=201, body=model("BatchExport", body))
    export_id = export.id
    listed, _ = call(tag, f"{prefix}_list", parent)
    assert any(item.id == export_id for item in listed.results)
    call(tag, f"{prefix}_retrieve", parent, export_id)
    patched, _ = call(tag, f"{prefix}_partial_update", parent, export_id,
                      body=model("PatchedBatchExport", {"name": "patched"}))
    assert patched.name == "patched"
    # PostHog's schema gives pause, unpause, backfill and test steps the whole export as their body.
    call(tag, f"{prefix}_pause_create", parent, export_id,
         **({"body": model("BatchExport", {}, export_json)} if flavour == "posthog" else {}))
    call(tag, f"{prefix}_unpause_create", parent, export_id,
         body=model("BatchExport", {}, export_json) if flavour == "posthog"
         else model("BatchExportUnpauseRequest", {"backfill": False}))
    window = {"start_at": "2026-01-01T00:00:00+00:00", "end_at": "2026-01-01T02:00:00+00:00"}
    call(tag, f"{prefix}_backfill_create", parent, export_id,
         body=model("BatchExport", window, export_json) if flavour == "posthog"
         else model("BatchExportBackfillRequest", window))
    call(tag, f"{prefix}_logs_retrieve", parent, export_id)
    if flavour == "hedgerow":
        call(tag, f"{prefix}_test_retrieve", parent, destination="S3")
    else:
        # PostHog's schema leaves out the `destination` query parameter: a client adds it itself.
        answer = client.get_httpx_client().get(f"/api/organizations/{parent}/batch_exports/test/",
                                               params={"destination": "S3"})
        assert answer.status_code == 200 and answer.json()["steps"], answer.text
        print(f"{prefix}_test_retrieve (with ?destination): 200")
    # A test step against an unsaved S3 configuration that nothing answers: the step fails (as a result).
    step_config = {"destination": {"type": "S3", "config": {
        "bucket_name": "b", "region": "us-east-1", "prefix": "p", "aws_access_key_id": "k",
        "aws_secret_access_key": "s", "endpoint_url": f"https://{socket.gethostname()}:9/"}}, "step": 0}
    if flavour == "posthog":
        step_body = model("BatchExport", step_config, export_json)
    else:
        step_body = model("BatchExportTestStepRequest", step_config)
    call(tag, f"{prefix}_run_test_step_new_create", parent, body=step_body)
    if flavour == "hedgerow":
        backfills, _ = call(tag, f"{prefix}_backfills_list", parent, export_id)
        assert len(backfills.results) == 1, backfills
        backfill_id = backfills.results[0].id
        call(tag, f"{prefix}_backfills_retrieve", parent, export_id, backfill_id)
        # Thirty days of runs, so that the backfill is still going when it is cancelled (a one-hour
        # backfill could complete first, and cancelling a completed one is refused).
        created_backfill, _ = call(tag, f"{prefix}_backfills_create", parent, export_id, expect=201,
                                   body=model("BatchExportBackfillRequest", {
                                       "start_at": "2026-02-01T00:00:00+00:00", "end_at": "2026-03-03T00:00:00+00:00"}))
        call(tag, f"{prefix}_backfills_cancel_create", parent, export_id, created_backfill.backfill_id)
        runs, _ = call(tag, f"{prefix}_runs_list", parent, export_id, ordering="-data_interval_start",
                       status=["Starting", "Running", "Completed", "Cancelled"])
        assert runs.results, "the backfill made no runs"
        run_id = runs.results[0].id
        call(tag, f"{prefix}_runs_retrieve", parent, export_id, run_id)
        call(tag, f"{prefix}_runs_logs_retrieve", parent, export_id, run_id)
        call(tag, f"{prefix}_run_test_step_create", parent, export_id,
             body=model("BatchExportTestStepRequest", {"step": 0}))
        call(tag, f"{prefix}_update", parent, export_id, body=model("BatchExport", {"name": "replaced"}, export_json))
    call(tag, f"{prefix}_destroy", parent, export_id, expect=204)

call(organizations, ids["destroy"], org, expect=204)
print("ok")
