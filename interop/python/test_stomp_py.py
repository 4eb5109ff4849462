"""stomp.py against stomp-server over TCP.

The server's address comes from STOMP_TCP (host:port); scripts/interop starts the server on
free ports with heart-beats of 1000,1000 ms and sets it.
"""

import json
import os
import queue
import socket
import subprocess
import sys
import time

import pytest
import stomp

HOST, PORT = os.environ["STOMP_TCP"].rsplit(":", 1)
PORT = int(PORT)
WAIT = 5


class Collector(stomp.ConnectionListener):
    """Every frame the client receives, by kind."""

    def __init__(self):
        self.messages = queue.Queue()
        self.receipts = queue.Queue()
        self.errors = queue.Queue()
        self.disconnected = False

    def on_message(self, frame):
        self.messages.put(frame)

    def on_receipt(self, frame):
        self.receipts.put(frame.headers["receipt-id"])

    def on_error(self, frame):
        self.errors.put(frame)

    def on_disconnected(self):
        self.disconnected = True

    def wait_disconnected(self):
        # stomp.py's receiver thread reports the close after `disconnect` returns.
        deadline = time.monotonic() + WAIT
        while not self.disconnected and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.disconnected

    def receipt(self, wanted):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                if self.receipts.get(timeout=0.1) == wanted:
                    return
            except queue.Empty:
                pass
        pytest.fail(f"no RECEIPT {wanted}")


def connect(version, heartbeats=(0, 0)):
    classes = {"1.0": stomp.Connection10, "1.1": stomp.Connection11, "1.2": stomp.Connection12}
    # stomp.py's defaults: no vhost, so no `host` header, which the server accepts.
    kwargs = {} if version == "1.0" else {"heartbeats": heartbeats}
    conn = classes[version]([(HOST, PORT)], **kwargs)
    listener = Collector()
    conn.set_listener("collector", listener)
    conn.connect("guest", "guest", wait=True)
    return conn, listener


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_subscribe_send_receive_ack_receipts_and_disconnect(version):
    conn, listener = connect(version)
    destination = f"/queue/stomp-py-{version}"
    conn.subscribe(destination, id="s1", ack="client-individual", headers={"receipt": "sub-1"})
    listener.receipt("sub-1")
    conn.send(destination, "héllo from stomp.py", headers={"receipt": "send-1", "x-note": "kept"})
    listener.receipt("send-1")
    frame = listener.messages.get(timeout=WAIT)
    assert frame.body == "héllo from stomp.py"
    assert frame.headers["destination"] == destination
    assert frame.headers["x-note"] == "kept"
    if version == "1.2":
        conn.ack(frame.headers["ack"], receipt="ack-1")
    elif version == "1.1":
        conn.ack(frame.headers["message-id"], "s1", receipt="ack-1")
    else:
        conn.ack(frame.headers["message-id"], receipt="ack-1")
    listener.receipt("ack-1")
    conn.disconnect(receipt="bye")
    assert listener.wait_disconnected()


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_the_command_line_client_running_a_file_leaves_the_server_serving(version, tmp_path):
    # As a new user would try it: stomp.py's own client runs a file of commands, which it
    # writes in one go after CONNECTED (these three once froze the server).
    commands = tmp_path / "commands.txt"
    commands.write_text(
        "subscribe /queue/testfile\n"
        "send /queue/testfile this is a test\n"
        "unsubscribe /queue/testfile\n"
    )
    run = [sys.executable, "-m", "stomp", "-H", HOST, "-P", str(PORT), "-S", version, "-F", str(commands)]
    done = subprocess.run(run, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Unsubscribing from '/queue/testfile'" in done.stdout
    # The next client is served at once, and finds the message once if it was not delivered.
    started = time.monotonic()
    conn, listener = connect("1.2")
    conn.subscribe("/queue/testfile", id="next", headers={"receipt": "next"})
    listener.receipt("next")
    assert time.monotonic() - started < 1
    conn.disconnect(receipt="bye")


def test_heart_beats_hold_for_more_than_three_periods():
    conn, listener = connect("1.2", heartbeats=(1000, 1000))
    time.sleep(3.5)
    assert conn.is_connected(), "dropped while idle"
    assert not listener.disconnected
    conn.subscribe("/topic/stomp-py-alive", id="alive")
    conn.send("/topic/stomp-py-alive", "still here", headers={"receipt": "alive-1"})
    listener.receipt("alive-1")
    assert listener.messages.get(timeout=WAIT).body == "still here"
    conn.disconnect(receipt="bye")


def test_chat_demo_answers_the_sender_and_the_room():
    # The classic flow: one subscription to the room; the sender gets its RESPONSE and the
    # room's MESSAGE there, both on /chat/ROOM with the request's tid.
    conn, listener = connect("1.2")
    conn.subscribe("/chat/py-room", id="sub-0", headers={"receipt": "subs"})
    listener.receipt("subs")
    request = {"tid": "py-1", "method": "/chat/sendMessage", "params": {"roomId": "py-room", "content": "hi"}}
    conn.send("/app/chat-api", json.dumps(request), content_type="application/json")
    frames = [listener.messages.get(timeout=WAIT) for _ in range(2)]
    kinds = sorted(json.loads(f.body)["type"] for f in frames)
    assert kinds == ["MESSAGE", "RESPONSE"]
    for frame in frames:
        assert json.loads(frame.body)["tid"] == "py-1"
        assert frame.headers["subscription"] == "sub-0"
        assert frame.headers["destination"] == "/chat/py-room"
        assert frame.headers["content-type"] == "application/json;charset=UTF-8"
        assert frame.headers["message-id"]
        assert int(frame.headers["content-length"]) == len(frame.body.encode())
    conn.disconnect(receipt="bye")


def test_a_malformed_frame_gets_an_error_and_others_are_still_served():
    conn, listener = connect("1.2")
    conn.subscribe("/topic/stomp-py-others", id="others", headers={"receipt": "others"})
    listener.receipt("others")
    with socket.create_connection((HOST, PORT), timeout=WAIT) as raw:
        raw.sendall(b"CONNECT\naccept-version:1.2\nhost:/\n\n\x00SEND\nbad header line\n\n\x00")
        answer = b""
        while chunk := raw.recv(4096):
            answer += chunk
    assert b"ERROR\nmessage:header line without a colon" in answer
    conn.send("/topic/stomp-py-others", "served")
    assert listener.messages.get(timeout=WAIT).body == "served"
    conn.disconnect(receipt="bye")
