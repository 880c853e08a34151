import asyncio
import sys
from pathlib import Path

import pytest

# The harness module lives next to the tests; it builds on the LSP harness in tests/lsp.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "lsp"))

from mcp_harness import SCOPED_CONFIG, HttpServer, Sandbox, http_session, wait_indexed  # noqa: E402


@pytest.fixture(scope="module")
def served():
    """One `codemem serve` over an indexed copy of the polyglot fixture, with a read-only
    token and a token limited to the `testing` namespace configured."""
    sb = Sandbox("http", SCOPED_CONFIG)
    server = HttpServer(sb)

    async def ready():
        async with http_session(server.url, server.headers()) as s:
            await wait_indexed(s.call_tool)

    try:
        asyncio.run(ready())
        yield server
    finally:
        code = server.stop()
        sb.cleanup()
        assert code == 0, f"codemem serve exited with {code} on SIGTERM:\n{server.stderr()}"
