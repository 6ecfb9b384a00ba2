"""fer-serve against stalled uploads: a real uvicorn server on loopback and raw-socket clients.

A client that sends the headers (with Content-Length) and part of the body, then
nothing, must get a 408 and a closed connection within the body timeout plus a
margin, while the server keeps answering everyone else.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from fer_keras.cli.serve import main as serve_main
from fer_keras.errors import FerError
from fer_keras.serve.app import create_app
from tests.model_fixtures import DRAWN, face_photo, jpeg_bytes, running_server, shared_model_folder

BODY_TIMEOUT = 2.0  # seconds: short, so the test is quick, but far above loopback latency
MARGIN = 3.0  # seconds on top of BODY_TIMEOUT: the machine may be busy (tests run under nice)
BOUNDARY = "fer-test-boundary"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return shared_model_folder(tmp_path_factory, onnx=True)


@pytest.fixture(scope="module")
def server(model_dir):
    """``(host, port)`` of uvicorn serving the app in a background thread (the onnx runtime: no TensorFlow)."""
    with running_server(create_app(model_dir, runtime="onnx", body_timeout=BODY_TIMEOUT, detector=DRAWN)) as address:
        yield address


def _multipart(data: bytes) -> bytes:
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def _request_head(host: str, port: int, length: int) -> bytes:
    return (
        f"POST /api/predict HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _read_until_closed(sock: socket.socket, deadline: float) -> bytes:
    """Everything the server sends until it closes the connection (fails at ``deadline``)."""
    received = b""
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            pytest.fail(f"connection still open after the body timeout + margin; got {received[:200]!r}")
        if not chunk:
            return received
        received += chunk


def _parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("sent", [0, 300], ids=["headers-only", "part-of-the-body"])
def test_stalled_upload_gets_408_and_a_closed_connection(server, sent):
    host, port = server
    body = _multipart(jpeg_bytes(face_photo()))
    with socket.create_connection(server) as sock:
        started = time.monotonic()
        sock.sendall(_request_head(host, port, len(body)) + body[:sent])
        raw = _read_until_closed(sock, started + BODY_TIMEOUT + MARGIN)
        elapsed = time.monotonic() - started
    status, headers, payload = _parse_response(raw)
    assert status == 408, raw[:300]
    assert headers["connection"] == "close" and headers["content-type"] == "application/json"
    assert json.loads(payload) == {"error": f"request body stalled: nothing received for {BODY_TIMEOUT:g} s"}
    assert BODY_TIMEOUT * 0.9 <= elapsed <= BODY_TIMEOUT + MARGIN


def test_server_keeps_serving_while_an_upload_stalls_and_after(server):
    host, port = server
    url = f"http://{host}:{port}"
    body = _multipart(jpeg_bytes(face_photo()))
    with socket.create_connection(server) as stalled:
        stalled.sendall(_request_head(host, port, len(body)) + body[:100])
        started = time.monotonic()
        health = httpx.get(f"{url}/health", timeout=BODY_TIMEOUT)
        assert health.status_code == 200 and time.monotonic() - started < BODY_TIMEOUT
        status, _, _ = _parse_response(_read_until_closed(stalled, started + BODY_TIMEOUT + MARGIN))
        assert status == 408
    photo = jpeg_bytes(face_photo(("happy", "sad")))
    response = httpx.post(f"{url}/api/predict", files={"file": ("a.jpg", photo, "image/jpeg")}, timeout=30)
    assert response.status_code == 200 and len(response.json()["faces"]) == 2


def test_slow_but_steady_upload_is_not_cut_off(server):
    # The timeout is per pause, not per request: 4 pieces 0.6 BODY_TIMEOUT apart take longer than it.
    host, port = server
    body = _multipart(jpeg_bytes(face_photo()))
    pieces = [body[i * len(body) // 4 : (i + 1) * len(body) // 4] for i in range(4)]
    with socket.create_connection(server) as sock:
        sock.sendall(_request_head(host, port, len(body)))
        started = time.monotonic()
        for piece in pieces:
            time.sleep(BODY_TIMEOUT * 0.6)
            sock.sendall(piece)
        assert time.monotonic() - started > BODY_TIMEOUT
        sock.settimeout(30)
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 200"), head[:300]


def test_body_timeout_is_validated(model_dir, capsys):
    with pytest.raises(FerError, match="'body_timeout' must be"):
        create_app(model_dir, runtime="onnx", body_timeout=0)
    assert serve_main(["--model", str(model_dir), "--body-timeout", "0", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: '--body-timeout' must be")
    assert serve_main(["--model", str(model_dir), "--body-timeout", "7.5", "--dry-run"]) == 0
    assert "time out after 7.5 s" in capsys.readouterr().out
