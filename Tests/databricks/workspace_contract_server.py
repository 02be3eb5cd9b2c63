"""A contract server for the Databricks workspace APIs Hedgerow's Databricks export uses, for the
parts no local emulator has (brickhouse lacks COPY INTO, the Files API, TIMESTAMP and VARIANT):

- OAuth M2M: POST /oidc/v1/token with the service principal's client ID and secret as HTTP Basic
  credentials and `grant_type=client_credentials&scope=all-apis`; answers a bearer token.
- Files API: PUT/GET/DELETE /api/2.0/fs/files/Volumes/<catalog>/<schema>/<volume>/<name>; the volume
  must exist, PUT needs `overwrite=true` to replace a file and `application/octet-stream`.
- SQL Statement Execution API: POST /api/2.0/sql/statements (the documented body: statement,
  warehouse_id, catalog, schema, named parameters, wait_timeout, on_wait_timeout, disposition,
  format), GET /api/2.0/sql/statements/<id>; every statement first answers PENDING, so clients must
  poll. Statements run on DuckDB after the Databricks-only clauses are translated: backticks, STRING,
  VARIANT, ARRAY<STRING>, TIMESTAMP, USING DELTA and COMMENT, PARSE_JSON, from_json, CREATE/DROP
  VOLUME (kept as directories), COPY INTO … FROM (SELECT … FROM '/Volumes/…') FILEFORMAT = PARQUET
  (files already loaded into the table are skipped, as Databricks does) and MERGE WITH SCHEMA
  EVOLUTION (DuckDB merges without evolving the schema).

Every request's credentials and shape are checked; a request that breaks the contract gets
Databricks' error answer. Requests are logged one JSON line each. Test-only controls under /_control/.

Run: python workspace_contract_server.py PORT DIR CLIENT_ID CLIENT_SECRET WAREHOUSE_ID CATALOG.SCHEMA…
"""

import base64
import glob
import json
import os
import re
import shutil
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import duckdb

PORT, DIR, CLIENT_ID, CLIENT_SECRET, WAREHOUSE = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
SCHEMAS = set(sys.argv[6:])
LOCK = threading.RLock()
DB = duckdb.connect()
TOKENS = {}  # token -> client id
PRINCIPALS = {CLIENT_ID: CLIENT_SECRET}
STATEMENTS = {}  # id -> {"body": ..., "polls": n, "answer": ...}
LOADED = {}  # table -> set of file paths COPY INTO loaded
LOG = []
VOLUMES = os.path.join(DIR, "volumes")
os.makedirs(VOLUMES, exist_ok=True)
for qualified in SCHEMAS:
    DB.execute('CREATE SCHEMA IF NOT EXISTS "%s"' % qualified.replace(".", "__"))


class StatementError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def translate_types(sql):
    sql = re.sub(r"ARRAY<STRING>", "VARCHAR[]", sql, flags=re.I)
    sql = re.sub(r"\bSTRING\b", "VARCHAR", sql)
    sql = re.sub(r"\bVARIANT\b", "JSON", sql)
    sql = re.sub(r"\bTIMESTAMP\b", "TIMESTAMPTZ", sql)
    return sql


def translate_expressions(sql):
    sql = re.sub(r"PARSE_JSON\(([^)]*)\)", r"CAST(\1 AS JSON)", sql)
    sql = re.sub(r"from_json\(([^,]*), 'ARRAY<STRING>'\)", r"CAST(CAST(\1 AS JSON) AS VARCHAR[])", sql)
    return sql


def quote_identifiers(sql):
    return re.sub(r"`((?:[^`]|``)*)`", lambda m: '"' + m.group(1).replace("``", "`").replace('"', '""') + '"', sql)


def volume_dir(path):
    parts = [p for p in path.split("/") if p]
    if len(parts) < 4 or parts[0] != "Volumes":
        raise StatementError("INVALID_PARAMETER_VALUE", "not a volume path: %s" % path)
    return os.path.join(VOLUMES, parts[1], parts[2], parts[3]), parts[4:]


def run_sql(statement, catalog, schema, parameters):
    qualified = "%s.%s" % (catalog, schema)
    if qualified not in SCHEMAS:
        raise StatementError("NOT_FOUND", "[SCHEMA_NOT_FOUND] The schema `%s` cannot be found." % qualified)
    DB.execute('SET schema = \'%s\'' % qualified.replace(".", "__"))
    text = statement.strip()
    volume = re.match(r"(CREATE|DROP) VOLUME (IF (NOT )?EXISTS )?`([^`]+)`", text, re.I)
    if volume:
        path = os.path.join(VOLUMES, catalog, schema, volume.group(4))
        if volume.group(1).upper() == "CREATE":
            os.makedirs(path, exist_ok=True)
        else:
            shutil.rmtree(path, ignore_errors=True)
        return [], []
    copy = re.match(r"COPY INTO (`[^`]+`) FROM \(SELECT (.*) FROM '([^']+)'\) FILEFORMAT = PARQUET$", text, re.S)
    if copy:
        table, select, source = copy.groups()
        directory, rest = volume_dir(source)
        if not os.path.isdir(directory):
            raise StatementError("NOT_FOUND", "[VOLUME_NOT_FOUND] %s" % source)
        files = sorted(glob.glob(os.path.join(directory, *rest, "*.parquet")))
        done = LOADED.setdefault((qualified, table), set())
        new = [f for f in files if f not in done]
        if new:
            listing = ", ".join("'%s'" % f for f in new)
            DB.execute("INSERT INTO %s SELECT %s FROM read_parquet([%s])" % (
                quote_identifiers(table), translate_expressions(quote_identifiers(select)), listing))
        done.update(new)
        return ["num_affected_rows", "num_inserted_rows"], [[str(len(new)), str(len(new))]]
    if re.match(r"CREATE TABLE", text, re.I):
        text = re.sub(r"\s+USING DELTA", "", text)
        text = re.sub(r"\s+COMMENT '([^']|'')*'\s*$", "", text)
        text = translate_types(text)
    text = re.sub(r"^MERGE WITH SCHEMA EVOLUTION INTO", "MERGE INTO", text)
    text = translate_expressions(quote_identifiers(text))
    names = {}
    for parameter in parameters:
        value = parameter.get("value")
        kind = parameter.get("type", "STRING")
        names[parameter["name"]] = int(value) if value is not None and kind in ("BIGINT", "INT") else value
    text = re.sub(r":([A-Za-z_][A-Za-z0-9_]*)", lambda m: "$" + m.group(1) if m.group(1) in names else m.group(0), text)
    try:
        cursor = DB.execute(text, names) if names else DB.execute(text)
    except duckdb.Error as error:
        raise StatementError("BAD_REQUEST", str(error))
    if cursor.description is None:
        return [], []
    columns = [d[0] for d in cursor.description]
    rows = [[None if v is None else (json.dumps(v) if isinstance(v, (list, dict)) else str(v)) for v in row] for row in cursor.fetchall()]
    return columns, rows


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=None, note=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        entry = {"method": self.command, "path": urlsplit(self.path).path, "status": status}
        if note:
            entry.update(note)
        with LOCK:
            LOG.append(entry)
        print(json.dumps(entry), flush=True)

    def fail(self, status, code, message):
        self.reply(status, {"error_code": code, "message": message})

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(length) if length else b""

    def authorized(self):
        header = self.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:] in TOKENS

    def handle_any(self):
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        data = self.body()
        if parts.path == "/oidc/v1/token" and self.command == "POST":
            form = parse_qs(data.decode())
            try:
                given = base64.b64decode(self.headers.get("Authorization", "")[6:]).decode()
            except Exception:
                given = ""
            principal, _, secret = given.partition(":")
            if not self.headers.get("Authorization", "").startswith("Basic ") or PRINCIPALS.get(principal) != secret or not secret:
                return self.reply(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
            if form.get("grant_type") != ["client_credentials"] or form.get("scope") != ["all-apis"]:
                return self.reply(400, {"error": "invalid_request", "error_description": "grant_type=client_credentials and scope=all-apis are required"})
            token = "dapi" + uuid.uuid4().hex
            TOKENS[token] = principal
            return self.reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": "all-apis"})
        if parts.path.startswith("/_control/"):
            return self.control(parts.path, data)
        if not self.authorized():
            return self.fail(401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API.")
        if parts.path.startswith("/api/2.0/fs/files/"):
            return self.files(unquote(parts.path[len("/api/2.0/fs/files"):]), query, data)
        if parts.path in ("/api/2.0/sql/statements", "/api/2.0/sql/statements/") and self.command == "POST":
            return self.submit(data)
        match = re.match(r"^/api/2.0/sql/statements/([^/]+)(/cancel)?$", parts.path)
        if match:
            return self.poll(match.group(1), cancel=bool(match.group(2)))
        return self.fail(404, "ENDPOINT_NOT_FOUND", "No API found for '%s %s'" % (self.command, parts.path))

    def files(self, path, query, data):
        try:
            directory, rest = volume_dir(path)
        except StatementError as error:
            return self.fail(400, error.code, error.message)
        if not os.path.isdir(directory):
            return self.fail(404, "NOT_FOUND", "The volume of %s does not exist" % path)
        target = os.path.join(directory, *rest)
        if self.command == "PUT":
            if self.headers.get("Content-Type") != "application/octet-stream":
                return self.fail(400, "INVALID_PARAMETER_VALUE", "Content-Type must be application/octet-stream")
            if os.path.exists(target) and query.get("overwrite") != ["true"]:
                return self.fail(409, "ALREADY_EXISTS", "The file being created already exists.")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as out:
                out.write(data)
            return self.reply(204, note={"bytes": len(data), "file": path})
        if not os.path.exists(target):
            return self.fail(404, "NOT_FOUND", "The file %s does not exist" % path)
        if self.command == "DELETE":
            os.remove(target)
            return self.reply(204)
        with open(target, "rb") as source:
            content = source.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def submit(self, data):
        try:
            body = json.loads(data)
        except ValueError:
            return self.fail(400, "MALFORMED_REQUEST", "Could not parse request object")
        allowed = {"statement", "warehouse_id", "catalog", "schema", "parameters", "wait_timeout", "on_wait_timeout",
                   "disposition", "format", "byte_limit", "row_limit"}
        unknown = set(body) - allowed
        if unknown or not isinstance(body.get("statement"), str):
            return self.fail(400, "INVALID_PARAMETER_VALUE", "unknown or missing fields: %s" % sorted(unknown or {"statement"}))
        if body.get("warehouse_id") != WAREHOUSE:
            return self.fail(404, "RESOURCE_DOES_NOT_EXIST", "Warehouse %s does not exist." % body.get("warehouse_id"))
        wait = body.get("wait_timeout", "10s")
        if not re.match(r"^(0|[5-9]|[1-4][0-9]|50)s$", wait):
            return self.fail(400, "INVALID_PARAMETER_VALUE", "wait_timeout must be 0s or between 5s and 50s")
        if body.get("on_wait_timeout", "CONTINUE") not in ("CONTINUE", "CANCEL"):
            return self.fail(400, "INVALID_PARAMETER_VALUE", "on_wait_timeout must be CONTINUE or CANCEL")
        if body.get("disposition", "INLINE") != "INLINE" or body.get("format", "JSON_ARRAY") != "JSON_ARRAY":
            return self.fail(400, "INVALID_PARAMETER_VALUE", "only INLINE JSON_ARRAY results are served here")
        for parameter in body.get("parameters", []):
            if set(parameter) - {"name", "value", "type"} or "name" not in parameter:
                return self.fail(400, "INVALID_PARAMETER_VALUE", "a parameter is {name, value, type}")
        statement_id = str(uuid.uuid4())
        with LOCK:
            STATEMENTS[statement_id] = {"body": body, "polls": 0, "answer": None}
        self.reply(200, {"statement_id": statement_id, "status": {"state": "PENDING"}}, note={"statement": body["statement"], "schema": body.get("schema")})

    def poll(self, statement_id, cancel):
        with LOCK:
            entry = STATEMENTS.get(statement_id)
            if entry is None:
                return self.fail(404, "RESOURCE_DOES_NOT_EXIST", "Statement %s does not exist" % statement_id)
            if cancel:
                entry["answer"] = {"statement_id": statement_id, "status": {"state": "CANCELED"}}
                return self.reply(200, {})
            entry["polls"] += 1
            if entry["answer"] is None and entry["polls"] == 1:
                return self.reply(200, {"statement_id": statement_id, "status": {"state": "RUNNING"}})
            if entry["answer"] is None:
                body = entry["body"]
                try:
                    columns, rows = run_sql(body["statement"], body.get("catalog", ""), body.get("schema", ""), body.get("parameters", []))
                    entry["answer"] = {
                        "statement_id": statement_id, "status": {"state": "SUCCEEDED"},
                        "manifest": {"format": "JSON_ARRAY", "schema": {"column_count": len(columns), "columns": [{"name": c, "position": i} for i, c in enumerate(columns)]},
                                     "total_row_count": len(rows)},
                        "result": {"chunk_index": 0, "row_offset": 0, "row_count": len(rows), "data_array": rows},
                    }
                except StatementError as error:
                    entry["answer"] = {"statement_id": statement_id,
                                       "status": {"state": "FAILED", "error": {"error_code": error.code, "message": error.message}}}
            return self.reply(200, entry["answer"])

    def control(self, path, data):
        if path == "/_control/sql":
            request = json.loads(data)
            with LOCK:
                try:
                    columns, rows = run_sql(request["statement"], request["catalog"], request["schema"], [])
                except StatementError as error:
                    return self.reply(400, {"error": error.message})
            return self.reply(200, {"columns": columns, "rows": rows})
        if path == "/_control/schema":
            request = json.loads(data)
            qualified = "%s.%s" % (request["catalog"], request["schema"])
            with LOCK:
                SCHEMAS.add(qualified)
                DB.execute('CREATE SCHEMA IF NOT EXISTS "%s"' % qualified.replace(".", "__"))
            return self.reply(204)
        if path == "/_control/principal":
            request = json.loads(data)
            with LOCK:
                PRINCIPALS[request["client_id"]] = request["client_secret"]
            return self.reply(204)
        if path == "/_control/revoke-tokens":
            request = json.loads(data)
            with LOCK:
                for token in [t for t, p in TOKENS.items() if p == request["client_id"]]:
                    del TOKENS[token]
            return self.reply(204)
        if path == "/_control/log":
            with LOCK:
                return self.reply(200, {"log": list(LOG)})
        if path == "/_control/volumes":
            found = []
            for root, _, files in os.walk(VOLUMES):
                found += [os.path.relpath(os.path.join(root, f), VOLUMES) for f in files]
            dirs = [os.path.relpath(d, VOLUMES) for d in glob.glob(os.path.join(VOLUMES, "*", "*", "*"))]
            return self.reply(200, {"files": sorted(found), "volumes": sorted(dirs)})
        return self.fail(404, "ENDPOINT_NOT_FOUND", path)

    do_GET = do_PUT = do_POST = do_DELETE = handle_any


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    print(json.dumps({"listening": PORT}), flush=True)
    server.serve_forever()
