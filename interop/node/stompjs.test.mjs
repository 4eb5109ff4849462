// @stomp/stompjs against stomp-server, over TCP (@stomp/tcp-wrapper) and WebSocket (ws).
// scripts/interop starts the server on free ports with heart-beats of 1000,1000 ms and sets
// STOMP_TCP (host:port) and STOMP_WS (ws://host:port/stomp).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Client } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import WebSocket from 'ws';

const [tcpHost, tcpPort] = process.env.STOMP_TCP.split(':');
const wsUrl = process.env.STOMP_WS;
const WAIT = 5000;

const transports = {
  tcp: () => new TCPWrapper(tcpHost, Number(tcpPort)),
  websocket: () => new WebSocket(wsUrl, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
};

/** A connected client; resolves once CONNECTED has come. */
function connect(transport, options = {}) {
  return new Promise((resolve, reject) => {
    const client = new Client({
      webSocketFactory: transports[transport],
      // stompjs's defaults: no `host` header, which the server accepts.
      connectHeaders: { login: 'guest', passcode: 'guest' },
      reconnectDelay: 0,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      ...options,
    });
    client.errors = [];
    client.closes = 0;
    client.onConnect = (frame) => resolve(Object.assign(client, { connectedFrame: frame }));
    client.onStompError = (frame) => { client.errors.push(frame); reject(new Error(frame.headers.message)); };
    client.onWebSocketClose = () => { client.closes += 1; };
    setTimeout(() => reject(new Error('no CONNECTED')), WAIT).unref();
    client.activate();
  });
}

const within = (promise, what) => Promise.race([
  promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), WAIT).unref()),
]);

const receipt = (client, id) => within(new Promise((resolve) => client.watchForReceipt(id, resolve)), `receipt ${id}`);

/** Subscribes to `destination`; each call of the returned function resolves with its next message. */
function nextMessage(client, destination, headers = {}) {
  const messages = [];
  let wake = null;
  const arrived = (message) => {
    messages.push(message);
    // Each waiter is woken once: a second message must wait for the next call.
    const waiter = wake;
    wake = null;
    if (waiter) waiter();
  };
  client.subscribe(destination, arrived, headers);
  return () => within(new Promise((resolve) => {
    const take = () => (messages.length ? resolve(messages.shift()) : (wake = take));
    take();
  }), `message on ${destination}`);
}

for (const transport of Object.keys(transports)) {
  test(`${transport}: subscribe, send with receipt, receive, ack with receipt, disconnect`, async () => {
    const client = await connect(transport);
    assert.equal(client.connectedFrame.headers.version, '1.2');
    const destination = `/queue/stompjs-${transport}`;
    const next = nextMessage(client, destination, { ack: 'client-individual', id: 'sub-0', receipt: 'sub' });
    await receipt(client, 'sub');
    const sent = receipt(client, 'send-1');
    client.publish({ destination, body: 'héllo from stompjs', headers: { receipt: 'send-1', 'x-note': 'kept' } });
    await sent;
    const message = await next();
    assert.equal(message.body, 'héllo from stompjs');
    assert.equal(message.headers['x-note'], 'kept');
    const acked = receipt(client, 'ack-1');
    message.ack({ receipt: 'ack-1' });
    await acked;
    await client.deactivate();
    assert.deepEqual(client.errors, []);
  });

  test(`${transport}: heart-beats hold for more than three periods`, async () => {
    const client = await connect(transport, { heartbeatIncoming: 1000, heartbeatOutgoing: 1000 });
    assert.equal(client.connectedFrame.headers['heart-beat'], '1000,1000');
    await new Promise((resolve) => setTimeout(resolve, 3500));
    assert.equal(client.closes, 0, 'dropped while idle');
    assert.ok(client.connected, "still connected");
    const next = nextMessage(client, `/topic/stompjs-alive-${transport}`, { receipt: 'alive-sub' });
    await receipt(client, 'alive-sub');
    client.publish({ destination: `/topic/stompjs-alive-${transport}`, body: 'still here' });
    assert.equal((await next()).body, 'still here');
    await client.deactivate();
  });

  test(`${transport}: the chat demo answers the sender and the room with one tid`, async () => {
    // The classic flow: one subscription to the room; the sender gets its RESPONSE and the
    // room's MESSAGE there, both on /chat/ROOM with the request's tid.
    const client = await connect(transport);
    const room = nextMessage(client, '/chat/js-room', { id: 'sub-0', receipt: 'subs' });
    await receipt(client, 'subs');
    const request = { tid: `js-${transport}`, method: '/chat/sendMessage', params: { roomId: 'js-room', content: 'hi' } };
    client.publish({ destination: '/app/chat-api', body: JSON.stringify(request), headers: { 'content-type': 'application/json' } });
    const frames = [await room(), await room()];
    assert.deepEqual(frames.map((f) => JSON.parse(f.body).type).sort(), ['MESSAGE', 'RESPONSE']);
    for (const frame of frames) {
      assert.equal(JSON.parse(frame.body).tid, request.tid);
      assert.equal(frame.headers.subscription, 'sub-0');
      assert.equal(frame.headers.destination, '/chat/js-room');
      assert.equal(frame.headers['content-type'], 'application/json;charset=UTF-8');
      assert.ok(frame.headers['message-id']);
      assert.equal(Number(frame.headers['content-length']), Buffer.byteLength(frame.body));
    }
    await client.deactivate();
  });
}

test('a malformed frame gets an ERROR while the others are still served', async () => {
  const client = await connect('websocket');
  const next = nextMessage(client, '/topic/stompjs-others', { receipt: 'others' });
  await receipt(client, 'others');
  const answer = await within(new Promise((resolve) => {
    const raw = net.connect(Number(tcpPort), tcpHost, () => {
      raw.write('CONNECT\naccept-version:1.2\nhost:/\n\n\0SUBSCRIBE\nid:0\n\n\0');
    });
    let text = '';
    raw.on('data', (chunk) => { text += chunk; });
    raw.on('close', () => resolve(text));
  }), 'the ERROR and the close');
  assert.match(answer, /ERROR\nmessage:SUBSCRIBE without destination/);
  client.publish({ destination: '/topic/stompjs-others', body: 'served' });
  assert.equal((await next()).body, 'served');
  await client.deactivate();
});
