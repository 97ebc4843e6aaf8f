#!/usr/bin/env python3
"""Checks the documents aqs publishes with validators an upstream team would use.

- ingest/openapi.json with `openapi-spec-validator` (OpenAPI 3.1), and every `$ref` in it
  resolved inside the document itself;
- every JSON Schema of schemas/json/v1/ against the meta-schema its `$schema` names, and every
  `$ref` in it resolved among those files, read from disk as a client reads them (relative to
  where each document was read, nothing fetched from elsewhere);
- the examples of schemas/tests/data/valid.ndjson validated through the published documents
  only (event.json and the type documents it refers to, then the `Event` component of the
  OpenAPI document), each accepted, and broken copies of them refused.

It exits non-zero naming the document, the reference or the example when one fails.

    python3 deploy/test-services/published_documents.py
"""

import copy
import json
import pathlib
import sys

import jsonschema
import referencing
import referencing.exceptions
from openapi_spec_validator import validate as validate_openapi
from referencing.jsonschema import DRAFT202012

ROOT = pathlib.Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "ingest" / "openapi.json"
SCHEMAS = ROOT / "schemas" / "json" / "v1"
EXAMPLES = ROOT / "schemas" / "tests" / "data" / "valid.ndjson"
# Where the OpenAPI document embeds the schema of any event.
EVENT_COMPONENT = "#/components/schemas/Event"


class Failures:
    def __init__(self):
        self.messages = []

    def add(self, message):
        self.messages.append(message)
        print(f"published documents: FAIL {message}", file=sys.stderr)


def local_registry(failures):
    """A registry that reads the published files from disk and refuses any other address,
    so that a reference leaving the published documents is an error, not a download."""
    published = {path.as_uri(): path for path in [OPENAPI, *sorted(SCHEMAS.glob("*.json"))]}

    def retrieve(uri):
        path = published.get(uri)
        if path is None:
            raise referencing.exceptions.NoSuchResource(ref=uri)
        return referencing.Resource.from_contents(
            json.loads(path.read_text(encoding="utf-8")), default_specification=DRAFT202012
        )

    return referencing.Registry(retrieve=retrieve)


def references(node, pointer=""):
    """Every `$ref` in a JSON document, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield pointer, value
            else:
                yield from references(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from references(value, f"{pointer}/{index}")


def check_references(path, document, registry, failures):
    """Resolves every `$ref` of a document as the specification says: against its `$id` when
    it has one, else against the address it was read from."""
    resource = referencing.Resource.from_contents(document, default_specification=DRAFT202012)
    # Read from `path`, and known by its `$id` too (as a validator compiling it knows it).
    registry = registry.with_resource(path.as_uri(), resource).crawl()
    resolver = registry.resolver(base_uri=path.as_uri()).in_subresource(resource)
    resolved = 0
    for pointer, ref in references(document):
        try:
            resolver.lookup(ref)
            resolved += 1
        except referencing.exceptions.Unresolvable as error:
            failures.add(f"{path.relative_to(ROOT)}: $ref {ref!r} at {pointer or '/'} does not resolve ({error})")
    return resolved


def check_openapi(registry, failures):
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    try:
        validate_openapi(document, base_uri=OPENAPI.as_uri())
    except Exception as error:  # the validator's errors have no common base class
        failures.add(f"{OPENAPI.relative_to(ROOT)} is not valid OpenAPI {document.get('openapi')}: {error}")
    count = check_references(OPENAPI, document, registry, failures)
    for pointer, ref in references(document):
        if not ref.startswith("#/"):
            failures.add(f"{OPENAPI.relative_to(ROOT)}: $ref {ref!r} at {pointer} leaves the document")
    print(f"published documents: {OPENAPI.relative_to(ROOT)}: OpenAPI {document.get('openapi')}, {count} references resolved")


def check_schemas(registry, failures):
    paths = sorted(SCHEMAS.glob("*.json"))
    if not paths:
        failures.add(f"no JSON Schema documents in {SCHEMAS.relative_to(ROOT)}")
    count = 0
    for path in paths:
        document = json.loads(path.read_text(encoding="utf-8"))
        validator_class = jsonschema.validators.validator_for(document, default=None)
        if validator_class is None:
            failures.add(f"{path.relative_to(ROOT)}: $schema {document.get('$schema')!r} is no meta-schema a validator knows")
            continue
        try:
            validator_class.check_schema(document)
        except jsonschema.exceptions.SchemaError as error:
            failures.add(f"{path.relative_to(ROOT)} is not a valid schema: {error.message} at {error.json_path}")
        count += check_references(path, document, registry, failures)
    print(f"published documents: {len(paths)} JSON Schema documents valid, {count} references resolved")


def broken_copies(event):
    """Copies of a valid event that the contract refuses, each with what was broken."""
    unknown = copy.deepcopy(event)
    unknown["payload"]["surprise"] = True
    no_id = copy.deepcopy(event)
    del no_id["event_id"]
    no_offset = copy.deepcopy(event)
    no_offset["occurred_at"] = event["occurred_at"][:19]
    later_version = copy.deepcopy(event)
    later_version["schema_version"] = 99
    other_type = copy.deepcopy(event)
    other_type["type"] = "no_such_type"
    return [
        ("an unknown payload field", unknown),
        ("no event_id", no_id),
        ("occurred_at without an offset", no_offset),
        ("schema_version 99", later_version),
        ("an unknown type", other_type),
    ]


def check_examples(registry, failures):
    examples = [
        (number, json.loads(line))
        for number, line in enumerate(EXAMPLES.read_text(encoding="utf-8").splitlines(), start=1)
        if line.strip()
    ]
    through = {
        "event.json": {"$ref": (SCHEMAS / "event.json").as_uri()},
        "openapi.json#/components/schemas/Event": {"$ref": OPENAPI.as_uri() + EVENT_COMPONENT},
    }
    for name, root in through.items():
        validator = jsonschema.Draft202012Validator(
            root, registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        accepted = refused = 0
        try:
            for number, event in examples:
                errors = list(validator.iter_errors(event))
                if errors:
                    failures.add(f"{EXAMPLES.relative_to(ROOT)} line {number} ({event.get('type')}) refused by {name}: {errors[0].message}")
                else:
                    accepted += 1
                for what, broken in broken_copies(event):
                    if validator.is_valid(broken):
                        failures.add(f"{EXAMPLES.relative_to(ROOT)} line {number} with {what} accepted by {name}")
                    else:
                        refused += 1
        except referencing.exceptions.Unresolvable as error:
            failures.add(f"validating through {name}: a reference does not resolve ({error!r:.300})")
            continue
        print(f"published documents: {name}: {accepted} examples accepted, {refused} broken copies refused")
    if len(examples) < 10:
        failures.add(f"only {len(examples)} examples in {EXAMPLES.relative_to(ROOT)}")


def main():
    failures = Failures()
    registry = local_registry(failures)
    check_openapi(registry, failures)
    check_schemas(registry, failures)
    check_examples(registry, failures)
    if failures.messages:
        print(f"published documents: {len(failures.messages)} problems", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
