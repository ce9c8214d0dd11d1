"""dagster-aws is wired only for the Athena destination, from the AWS chain alone.

Each case imports the definitions in a fresh interpreter, because what matters is what the
import itself loads: the local default must not pull in boto3/botocore/dagster_aws (seconds of
start-up for every run process and every `dagster dev` reload, for nothing).
"""

import json
import os
import subprocess
import sys

from wearable_assets import settings

AWS_MODULES = ("boto3", "botocore", "dagster_aws", "s3fs", "aiobotocore")

PROBE = f"""
import json, sys, warnings
warnings.simplefilter("ignore")
from wearable_assets.definitions import defs
resources = {{}}
for name in ("s3", "athena"):
    r = defs.resources.get(name)
    if r is not None:
        resources[name] = {{"type": type(r).__module__ + "." + type(r).__name__,
                           **{{k: v for k, v in r.__dict__.items() if not k.startswith("_")}}}}
print(json.dumps({{"modules": sorted({{m.split(".")[0] for m in sys.modules}} & set({AWS_MODULES!r})),
                  "resources": resources}}, default=str))
"""


def probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("WEARABLES_LAKE", "WEARABLES_ATHENA", "AWS_"))}
    clean.update({settings.TIMESCALE_DSN_ENV: "postgresql://nobody@127.0.0.1:1/none",
                  settings.LAKE_URL_ENV: "/tmp/lake-not-written", "PYTHONPATH": str(settings.REPO_ROOT), **env})
    out = subprocess.run([sys.executable, "-c", PROBE], env=clean, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_local_default_imports_no_aws_code() -> None:
    result = probe()
    assert result == {"modules": [], "resources": {}}


def test_athena_destination_wires_s3_and_athena_resources_without_secrets() -> None:
    result = probe(WEARABLES_LAKE_DESTINATION="athena", WEARABLES_LAKE_URL="s3://lake/prefix",
                   WEARABLES_ATHENA_RESULTS="s3://lake/athena-results/", WEARABLES_ATHENA_WORKGROUP="wearables",
                   AWS_DEFAULT_REGION="eu-west-1")
    assert "dagster_aws" in result["modules"]
    s3, athena = result["resources"]["s3"], result["resources"]["athena"]
    assert s3["type"] == "dagster_aws.s3.resources.S3Resource" and s3["region_name"] == "eu-west-1"
    assert s3["endpoint_url"] is None  # AWS itself
    assert athena["type"] == "dagster_aws.athena.resources.AthenaClientResource"
    assert athena["workgroup"] == "wearables"
    # Credentials come from the AWS chain at run time: no resource field holds one.
    for resource in (s3, athena):
        assert all(resource.get(field) is None for field in
                   ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "profile_name"))
