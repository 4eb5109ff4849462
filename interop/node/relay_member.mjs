// A chat room member on node A: @stomp/stompjs over WebSocket with its default heart-beats
// (10000,10000). Subscribes to the room (argv[3]) at node A (argv[2], ws://...), prints
// "ready" once the subscription's RECEIPT came, then at "go" on stdin SENDs argv[4] messages
// "js-N" to the room, and prints each MESSAGE it gets as a JSON line. Driven by
// interop/relay/test_two_nodes.py; it ends when stdin closes.
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';
import readline from 'node:readline';

const [, , url, room, count] = process.argv;
const client = new Client({
  webSocketFactory: () => new WebSocket(url, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
  connectHeaders: { login: 'js', passcode: 'x' },
  reconnectDelay: 0,
});
client.onStompError = (frame) => {
  console.log(JSON.stringify({ error: frame.headers.message }));
  process.exit(1);
};
client.onConnect = () => {
  client.subscribe(room, (message) => {
    console.log(JSON.stringify({ destination: message.headers.destination, body: message.body }));
  }, { receipt: 'room' });
  client.watchForReceipt('room', () => console.log('ready'));
};
client.activate();

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line !== 'go') return;
  for (let n = 0; n < Number(count); n += 1) {
    client.publish({ destination: room, body: `js-${n}` });
  }
});
lines.on('close', async () => {
  await client.deactivate();
  process.exit(0);
});
