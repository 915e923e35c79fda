"""The set-up scripts: arguments given to them go to the gateway, not to the installer."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_serve_passes_its_arguments_to_the_gateway(tmp_path):
    # `check-config`-style failure proves the arguments reached `gateway-trio serve`.
    missing = tmp_path / "missing.toml"
    result = subprocess.run([str(ROOT / "scripts" / "serve"), "--config", str(missing), "--port", "0"],
                            capture_output=True, text=True, timeout=300, env={**os.environ})
    assert result.returncode == 1
    assert "missing.toml: cannot read" in result.stderr
