"""Validates OCSF events (NDJSON files) against the OCSF schema of their metadata.version,
from the ocsf-json-schema package (the schema as schema.ocsf.io exports it, turned into JSON
Schema 2020-12), with the jsonschema package. Prints {"valid": N, "classes": {uid: count}}
or the first problems and exits 1. Exits 3 when the packages are missing."""

import json
import sys

try:
    from jsonschema import Draft202012Validator
    from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema
except ImportError as error:
    print(f"missing package: {error}", file=sys.stderr)
    sys.exit(3)

validators = {}


def validator(version, class_uid):
    key = (version, class_uid)
    if key not in validators:
        schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=version))
        name = schema.lookup_class_name_from_uid(class_uid=class_uid)
        class_schema = schema.get_class_schema(class_name=name, profiles=[])
        validators[key] = Draft202012Validator(
            class_schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
    return validators[key]


problems = []
classes = {}
valid = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            event = json.loads(line)
            version = event.get("metadata", {}).get("version")
            class_uid = event.get("class_uid")
            errors = list(validator(version, class_uid).iter_errors(event))
            if errors:
                for error in errors[:5]:
                    path_text = "/".join(str(part) for part in error.absolute_path)
                    problems.append(f"{path}:{number} {path_text}: {error.message}")
            else:
                valid += 1
                classes[str(class_uid)] = classes.get(str(class_uid), 0) + 1

if problems:
    print("\n".join(problems[:40]))
    sys.exit(1)
print(json.dumps({"valid": valid, "classes": classes}, sort_keys=True))
