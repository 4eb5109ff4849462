"""The stomp.py snippet of docs/server.md, run as written against stomp-server (on the port
scripts/interop picked instead of the default 61613)."""

import os
import pathlib
import re
import subprocess
import sys

PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "server.md"


def test_the_readme_snippet_receives_its_message():
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert len(blocks) == 1, "docs/server.md should hold one Python snippet"
    snippet = blocks[0]
    assert '("127.0.0.1", 61613)' in snippet
    host, port = os.environ["STOMP_TCP"].rsplit(":", 1)
    snippet = snippet.replace('("127.0.0.1", 61613)', f'("{host}", {port})')
    run = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    # stomp.PrintingListener prints each MESSAGE's headers and body.
    assert "on_message" in run.stdout and "hello" in run.stdout, run.stdout + run.stderr
