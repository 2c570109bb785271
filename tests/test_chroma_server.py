"""Server mode against a real `chroma run` process on loopback."""

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentmem.ingest import ingest_file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    proc = subprocess.Popen([exe, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import chromadb

    deadline = time.time() + 90
    while True:
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
            break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError("chroma run did not start") from None
            time.sleep(0.5)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)


def test_server_mode_indexes_and_queries_through_http(make_memory, chroma_server, tmp_path):
    from agentmem.demo import example_path

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
