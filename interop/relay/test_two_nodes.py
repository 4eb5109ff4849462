"""Two stomp-server nodes relaying to one RabbitMQ: stompjs on node A (WebSocket), stomp.py
on node B (TCP), with their default settings.

scripts/interop starts both nodes with `--relay` and sets RELAY_A_WS (ws://.../stomp) and
RELAY_B_TCP (host:port); RabbitMQ must be up (scripts/test starts it).
"""

import json
import os
import queue
import subprocess
import threading
import time
import urllib.request
import uuid

import stomp

A_WS = os.environ["RELAY_A_WS"]
METRICS = [os.environ["RELAY_A_HTTP"] + "metrics", os.environ["RELAY_B_HTTP"] + "metrics"]
B_HOST, B_PORT = os.environ["RELAY_B_TCP"].rsplit(":", 1)
NODE = os.path.join(os.path.dirname(__file__), "..", "node")
WAIT = 10
COUNT = 20


class Collector(stomp.ConnectionListener):
    def __init__(self):
        self.messages = queue.Queue()
        self.errors = queue.Queue()

    def on_message(self, frame):
        self.messages.put(frame)

    def on_error(self, frame):
        self.errors.put(frame)


def wait_for_the_relays():
    """Both nodes report their broker connections up on /metrics."""
    deadline = time.monotonic() + WAIT
    for url in METRICS:
        while True:
            with urllib.request.urlopen(url, timeout=WAIT) as response:
                if "\nstomp_relay_available 1\n" in response.read().decode():
                    break
            assert time.monotonic() < deadline, f"{url}: the relay is not up"
            time.sleep(0.1)


def lines_of(process, into):
    for line in process.stdout:
        into.put(line.strip())


def test_stompjs_on_a_and_stomp_py_on_b_each_get_every_room_message_once():
    wait_for_the_relays()
    room = f"/chat/lobby-{uuid.uuid4().hex[:8]}"
    member = subprocess.Popen(
        ["node", "relay_member.mjs", A_WS, room, str(COUNT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=NODE,
    )
    out = queue.Queue()
    threading.Thread(target=lines_of, args=(member, out), daemon=True).start()
    try:
        assert out.get(timeout=WAIT) == "ready"
        conn = stomp.Connection12([(B_HOST, int(B_PORT))])
        listener = Collector()
        conn.set_listener("collector", listener)
        conn.connect("py", "x", wait=True)
        conn.subscribe(room, id="room", headers={"receipt": "sub"})
        time.sleep(0.3)
        member.stdin.write("go\n")
        member.stdin.flush()
        for n in range(COUNT):
            conn.send(room, f"py-{n}")
        # The chat handler on node B: its MESSAGE reaches the room on both nodes.
        request = {"tid": "t1", "method": "/chat/sendMessage", "params": {"roomId": room[6:], "text": "hi"}}
        conn.send("/app/chat-api", json.dumps(request), content_type="application/json")

        expected = {f"js-{n}" for n in range(COUNT)} | {f"py-{n}" for n in range(COUNT)}
        got_py, chat_py = [], []
        deadline = time.monotonic() + WAIT
        while len(got_py) + len(chat_py) < 2 * COUNT + 2 and time.monotonic() < deadline:
            try:
                frame = listener.messages.get(timeout=0.2)
            except queue.Empty:
                continue
            assert frame.headers["destination"] == room
            (chat_py if frame.body.startswith("{") else got_py).append(frame.body)
        got_js, chat_js = [], []
        while len(got_js) + len(chat_js) < 2 * COUNT + 1:
            line = out.get(timeout=WAIT)
            message = json.loads(line)
            assert "error" not in message, message
            assert message["destination"] == room
            (chat_js if message["body"].startswith("{") else got_js).append(message["body"])
        assert sorted(got_py) == sorted(expected), "stomp.py on B: each message exactly once"
        assert sorted(got_js) == sorted(expected), "stompjs on A: each message exactly once"
        # stomp.py, the sender: the room's MESSAGE and its own RESPONSE; stompjs: the MESSAGE.
        assert sorted(json.loads(b)["type"] for b in chat_py) == ["MESSAGE", "RESPONSE"]
        assert [json.loads(b)["type"] for b in chat_js] == ["MESSAGE"]
        time.sleep(0.3)
        assert listener.messages.empty() and out.empty(), "a message came twice"
        assert listener.errors.empty()
        conn.disconnect()
    finally:
        member.stdin.close()
        member.wait(timeout=WAIT)
