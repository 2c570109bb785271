"""Server mode against a real `chroma run` process on loopback."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentmem.formats.ingest import ingest_file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(cmd: list[str], port: int, env: dict | None = None) -> subprocess.Popen:
    import urllib.request

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 90
    while True:
        try:  # the heartbeat needs no token (a client's constructor does)
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2).read()
            return proc
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError(f"{cmd[0]} did not start") from None
            time.sleep(0.5)


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    proc = start_server([exe, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)], port)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)


TOKEN = "s3cret-test-token"


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    """Chroma's own server (``chromadb.app``) with its token authentication on, as the README shows."""
    port = free_port()
    env = {
        **os.environ,
        "CHROMA_SERVER_AUTHN_PROVIDER": "chromadb.auth.token_authn.TokenAuthenticationServerProvider",
        "CHROMA_SERVER_AUTHN_CREDENTIALS": TOKEN,
        "IS_PERSISTENT": "TRUE",
        "PERSIST_DIRECTORY": str(tmp_path_factory.mktemp("chroma-auth")),
        "ANONYMIZED_TELEMETRY": "False",
    }
    proc = start_server(
        [sys.executable, "-m", "uvicorn", "chromadb.app:app", "--host", "127.0.0.1", "--port", str(port)], port, env
    )
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)


def test_token_auth_works_with_the_right_token_and_fails_clearly_without_it(make_memory, token_server):
    from agentmem.storage.vector_index import IndexUnavailableError

    mem = make_memory("tok", chroma_url=token_server, chroma_token=TOKEN)
    mem.add_events([{"id": "a", "t_start": 0, "text": "the lamp is lit"}])
    assert mem.index.count("text") == 1
    assert mem.query(text="lamp", preset="dense", k=1)[0].id == "a"
    for name, token in (("none", None), ("wrong", "not-the-token")):
        other = make_memory(f"tok-{name}", chroma_url=token_server, chroma_token=token)
        with pytest.raises(IndexUnavailableError, match="the server wants a token"):
            other.index.count("text")


def test_the_token_comes_from_the_environment_and_is_never_stored(make_memory, token_server, monkeypatch):
    monkeypatch.setenv("AGENTMEM_CHROMA_TOKEN", TOKEN)
    mem = make_memory("tok-env", chroma_url=token_server)
    mem.add_events([{"id": "b", "t_start": 0, "text": "a gull on the rail"}])
    assert mem.index.count("text") == 1
    assert TOKEN.encode() not in (mem.dir / "memory.db").read_bytes()


def test_writes_succeed_while_the_server_is_down_and_catch_up_when_it_returns(make_memory, tmp_path):
    from agentmem.memory import IndexWarning

    port = free_port()
    mem = make_memory("down", chroma_url=f"http://127.0.0.1:{port}")
    with pytest.warns(IndexWarning, match="stored, but not yet indexed"):
        ids = mem.add_events([{"id": f"d{i}", "t_start": i, "text": f"buoy number {i} drifts"} for i in range(5)])
    assert ids == [f"d{i}" for i in range(5)] and mem.store.outbox_size() == 5
    # an unfiltered text query reads the vectors from SQLite while the server is away
    assert mem.query(text="buoy number 3 drifts", preset="dense", k=1)[0].id == "d3"
    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    proc = start_server(
        [exe, "run", "--path", str(tmp_path / "late"), "--host", "127.0.0.1", "--port", str(port)], port
    )
    try:
        assert mem.sync_index().applied == 5 and mem.store.outbox_size() == 0
        assert mem.index.count("text") == 5
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_cli_prints_a_warning_not_a_traceback_when_the_server_is_down(tmp_path):
    from click.testing import CliRunner

    from agentmem.cli.main import cli
    from agentmem.formats.examples import example_path

    url = f"http://127.0.0.1:{free_port()}"
    res = CliRunner().invoke(cli, ["ingest", str(example_path()), "--db", str(tmp_path / "m"), "--chroma-url", url])
    assert res.exit_code == 0, res.output
    assert "stored 10 entities, 18 events, 2 facts" in res.output and "Traceback" not in res.output
    assert f"not indexed yet: chroma server {url}" in res.output and "agentmem index sync" in res.output


def test_server_mode_indexes_and_queries_through_http(make_memory, chroma_server, tmp_path):
    from agentmem.formats.examples import example_path

    mem = make_memory("srv", chroma_url=chroma_server)
    rep = ingest_file(mem, example_path())
    assert mem.stats()["index"] == chroma_server
    assert mem.index.count("text") == rep.events
    hits = mem.query(text="brass lamp keepsake", k=3, preset="dense")
    assert hits[0].id == "e12"
    # a second memory on the same server keeps its own collections
    other = make_memory("srv2", chroma_url=chroma_server)
    other.add_events([{"id": "only", "t_start": 0, "text": "a lone event"}])
    assert other.index.count("text") == 1 and mem.index.count("text") == rep.events
    # the server choice is remembered by the directory
    mem.close()
    again = make_memory("srv")
    assert again.stats()["index"] == chroma_server


def test_bad_server_url_is_rejected(make_memory):
    from agentmem.errors import StoreError

    with pytest.raises(StoreError, match="use http://HOST:PORT"):
        make_memory("x", chroma_url="ftp://nowhere")
