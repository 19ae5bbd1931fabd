"""Fuzz every management API operation from its own OpenAPI schema (schemathesis) against a real server.

Starts the gateway the way tests/e2e does (fresh SQLite database, an admin key, a few objects so reads by
name find something), downloads /gateway/admin/v1/openapi.json, and runs schemathesis with a fixed seed and
a time budget. Fails on any 5xx or any answer that does not match the schema. Ends with a
'N passed, N failed' line for scripts/test.sh's summary.

    .venv/bin/python scripts/fuzz_admin_api.py [--seed 14] [--max-time 90]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import make_gateway  # noqa: E402

SEED_CONFIG = {
    "secrets": [{"name": "openai", "provider": "openai", "values": {"api_key": "sk-fuzz-0123456789"},
                 "auth_config": {"api_base": "http://127.0.0.1:9/v1"}}],
    "models": [{"name": "echo", "provider": "fake", "model_name": "fake-echo"}],
    "guardrails": [{"name": "no-pii", "kind": "pii"}],
    "endpoints": [{"name": "chat", "models": [{"model": "echo"}], "guardrails": ["no-pii"]}],
    "budgets": [{"name": "daily", "scope": "endpoint", "target": "chat", "amount_usd": 5,
                 "window": {"unit": "days", "value": 1}}],
}
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--max-time", type=int, default=90, help="schemathesis's time budget in seconds")
    parser.add_argument("--max-examples", type=int, default=40, help="test cases per operation and phase")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fuzz-admin-api-") as tmp:
        root = Path(tmp)
        server = make_gateway(root, "fuzz", SEED_CONFIG, keys={}, start=False)
        admin_key = server.create_key("fuzzer", admin=True)
        server.start()
        try:
            headers = {"Authorization": f"Bearer {admin_key}"}
            schema = httpx.get(f"{server.url}/gateway/admin/v1/openapi.json", headers=headers, timeout=30)
            schema.raise_for_status()
            schema_path = root / "openapi.json"
            schema_path.write_text(json.dumps(schema.json()))
            command = [
                str(Path(sys.executable).parent / "schemathesis"), "run", str(schema_path), "--url", server.url,
                "-H", f"Authorization: Bearer {admin_key}", "--seed", str(args.seed),
                "--max-time", str(args.max_time), "--max-examples", str(args.max_examples), "--workers", "1",
                "--checks", CHECKS, "--generation-database", "none", "--no-color", "--output-sanitize", "true",
            ]
            result = subprocess.run(command, cwd=root, timeout=args.max_time + 120)
        finally:
            server.stop()
        if result.returncode != 0:
            print(f"\n{server.log()[-4000:]}")
        print(f"fuzz: {0 if result.returncode else 1} passed, {1 if result.returncode else 0} failed")
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
